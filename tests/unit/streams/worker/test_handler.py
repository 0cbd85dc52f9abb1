"""The retry loop (streams/worker/durable.py) while ClickHouse is away: /health's stall
watch names the wait once it passes the threshold, and stop() (SIGTERM) ends
it at once, the batch given up un-acked rather than failed (that would be fatal)."""

import asyncio

import numpy as np
import orjson

from fleetpulse.errors import ClickHouseUnavailable
from fleetpulse.settings import load_settings
from fleetpulse.streams.prometheus.pipeline import PipelineMetrics
from fleetpulse.streams.windows.batch import MessageBatch
from fleetpulse.streams.worker.durable import Durable
from fleetpulse.streams.worker.handler import RequestBatchHandler, invalid_field
from fleetpulse.streams.worker.stall import StallWatch
from tests.events import good_request
from tests.unit.streams.worker.test_stall import Clock

AWAY = ClickHouseUnavailable("chDB at /x is not reachable (connection refused)")


class Sink:
    """ClickHouse that answers reads while ``reads`` and never takes a write."""

    def __init__(self, reads: bool):
        self.reads = reads
        self.calls = 0

    def catch_up_rollups(self, topic, partitions):
        self.calls += 1
        if not self.reads:
            raise AWAY
        return 0

    def read_progress(self, topic):
        return {}

    def read_tenant_progress(self, topic):
        return {}

    def write(self, batch):
        self.calls += 1
        raise AWAY


def handler_for(sink: Sink, clock: Clock) -> RequestBatchHandler:
    metrics = PipelineMetrics()
    durable = Durable(dead_letters=None, metrics=metrics)
    durable.stalls = StallWatch(clock)
    return RequestBatchHandler(load_settings(environ={}), durable, sink, metrics=metrics, exporter=None)


async def third_try(sink: Sink) -> None:
    """Until the third call failed: the wait before the next one is 2 s."""
    while sink.calls < 3:
        await asyncio.sleep(0.05)


def test_waiting_for_clickhouse_on_assignment_is_a_stall_and_stop_ends_it():
    async def scenario():
        clock, sink = Clock(), Sink(reads=False)
        handler = handler_for(sink, clock)
        assigning = asyncio.ensure_future(handler.on_assigned([("t", 0)]))
        await third_try(sink)
        assert handler.durable.stalls.stalled(60) is None
        clock.now += 61
        assert handler.durable.stalls.stalled(60) == ("a partition assignment has been waiting for what ClickHouse holds "
                                              f"for 61s (limit 60s); last error: clickhouse: {AWAY}")
        handler.durable.stop()
        await asyncio.wait([assigning], timeout=0.5)
        assert assigning.cancelled() and handler.progress == {}
        assert handler.durable.stalls.stalled(60) is None

    asyncio.run(scenario())


def test_stop_gives_up_a_batch_being_retried_unacked_and_takes_no_more():
    async def scenario():
        clock, sink = Clock(), Sink(reads=True)
        handler = handler_for(sink, clock)
        await handler.on_assigned([("t", 0)])
        sink.calls = 0
        batch = MessageBatch("t", np.zeros(1, np.int64), np.zeros(1, np.int64), [orjson.dumps(good_request())])
        durable, fatal = [], []
        await handler.handle(batch, lambda: durable.append(1), fatal.append)
        await third_try(sink)
        clock.now += 61
        assert "a request batch has been waiting to be written for 61s" in handler.durable.stalls.stalled(60)
        handler.durable.stop()
        await asyncio.wait_for(handler.flush(), 0.5)
        await handler.handle(batch, lambda: durable.append(2), fatal.append)
        await asyncio.sleep(0.1)
        assert durable == [] and fatal == [] and sink.calls == 3
        assert handler.durable.stalls.stalled(60) is None

    asyncio.run(scenario())


def test_invalid_field_label_drops_the_event_index():
    assert invalid_field("events[17].gen_ai.usage.input_tokens: must be >= 0") == "gen_ai.usage.input_tokens"
    assert invalid_field("message: not valid JSON: x") == "message"
