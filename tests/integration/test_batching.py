"""Single-event messages reach the windows in whole batches, not one by one:
what a user sees is the batch counter on /metrics, exact totals, and a lag
that drains to zero."""

from __future__ import annotations

import orjson
import pytest
from confluent_kafka import Producer

from tests.clock import RECENT_HOUR
from tests.integration.workers import isolated_settings, metric_value
from tests.unit.test_schemas import good_request

pytestmark = pytest.mark.integration

MESSAGES = 30_000


def test_a_backlog_of_single_events_is_written_in_a_few_large_batches(kafka_settings, tmp_path_factory,
                                                                        start_worker):
    tmp = tmp_path_factory.mktemp("batching")
    settings = isolated_settings(kafka_settings, tmp)
    producer = Producer({"bootstrap.servers": settings.bootstrap, "linger.ms": 20})
    for i in range(MESSAGES):
        event = good_request(**{"request.id": f"r{i}", "timestamp": RECENT_HOUR + i * 0.01,
                                "host.name": f"node-{i % 7}", "error.type": "timeout" if i % 10 == 0 else None})
        producer.produce(settings.topic("requests"), orjson.dumps(event))
        if i % 5000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0

    worker = start_worker(settings)  # the whole backlog is waiting when it starts
    topic = settings.topic("requests")
    assert worker.wait_for("SELECT sum(requests) FROM request_windows", MESSAGES, timeout=180) == MESSAGES
    assert worker.scalar("SELECT sum(errors) FROM request_windows") == MESSAGES // 10
    text = worker.wait_for_metric("fleetpulse_consumer_lag_messages", 0)
    lag_series = [line for line in text.splitlines() if line.startswith("fleetpulse_consumer_lag_messages{")]
    assert len(lag_series) == settings.requests_partitions, lag_series  # drained, not absent
    assert metric_value(text, "fleetpulse_messages_in_total", topic=topic) == MESSAGES
    batches = metric_value(text, "fleetpulse_batches_total", topic=topic)
    # One consume() call takes up to FLEETPULSE_BATCH_MAX_MESSAGES (50,000) messages: a 30,000-message
    # backlog takes a handful of batches, not one per message (faust's per-message path did).
    assert 1 <= batches <= 30, batches
