"""Wire the worker: build each dependency once and pass it in.

Nothing here computes anything; decoding, windows, sketches and rows live in
pure modules, I/O in sinks. The requests topic is consumed in whole batches by
a service of the faust app (streams/worker/consumer.py); the GPU topic by a faust
agent, with manual acks; the app's web server serves the pages of streams/worker/web.py.
"""

from __future__ import annotations

import asyncio
import logging
import os

import faust

from fleetpulse.clickhouse import ClickHouse
from fleetpulse.errors import ClickHouseUnavailable, KafkaUnavailable
from fleetpulse.settings import Settings
from fleetpulse.streams.alerting.evaluator import AlertEvaluator
from fleetpulse.streams.alerting.publish import AlertSink
from fleetpulse.streams.drift.evaluator import DriftEvaluator
from fleetpulse.streams.gpu.windows import GpuWindowWriter
from fleetpulse.streams.prometheus.pipeline import PipelineMetrics
from fleetpulse.streams.prometheus.requests import RequestExporter, le_indices
from fleetpulse.streams.prometheus.tenants import TenantTopK
from fleetpulse.streams.windows.batch import MessageBatch, RawMessage
from fleetpulse.streams.windows.fleet_watermark import REQUESTS_AND_GPU, FleetWatermark
from fleetpulse.streams.windows.sink import ClickHouseSink
from fleetpulse.streams.worker.consumer import RequestFeed
from fleetpulse.streams.worker.deadletter import DeadLetterSink
from fleetpulse.streams.worker.durable import Durable
from fleetpulse.streams.worker.gpu_batches import GpuBatchWriter
from fleetpulse.streams.worker.handler import RequestBatchHandler
from fleetpulse.streams.worker.web import add_pages, web_options

log = logging.getLogger("fleetpulse.worker")

EXIT_FATAL = 70  # EX_SOFTWARE
#: GPU samples go through faust's per-message path (a few per GPU per second):
#: its buffers hold this many messages at most.
GPU_BATCH_MESSAGES = 2000

def build_app(settings: Settings, ch: ClickHouse, reader: ClickHouse) -> tuple[faust.App, RequestBatchHandler]:
    """``ch`` is the writer's session; ``reader`` the read-only one user SQL runs on."""
    metrics = PipelineMetrics()
    alerts = AlertSink(settings.bootstrap, settings.topic("alerts"), settings.alert_webhook_url,
                       on_webhook_failure=metrics.webhook_failures.inc)
    exporter = RequestExporter(settings.metric_label_names, settings.metric_label_cap,
                               le_indices(settings.histogram_edge_seconds))
    metrics.registry.register(exporter)
    tenants = TenantTopK(settings)
    metrics.registry.register(tenants)
    # One retry loop, one chDB thread, one /health watch for both agents' writes.
    durable = Durable(DeadLetterSink(settings.bootstrap, settings.topic("deadletter")), metrics)
    handler = RequestBatchHandler(settings, durable, ClickHouseSink(ch, metrics), metrics, exporter, tenants)
    app = faust.App(
        settings.consumer_group,
        broker=f"kafka://{settings.bootstrap}",
        store="memory://",
        datadir=str(settings.home / "faust"),  # faust's own files, never in the current directory
        autodiscover=False,
        web_enabled=True,
        web_bind=settings.http_host,
        web_port=settings.http_port,
        web_transport="tcp://",
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=False,
        topic_disable_leader=True,
        broker_commit_interval=1.0,
        broker_session_timeout=settings.session_timeout_seconds,
        consumer_group_instance_id=settings.worker_id or None,
        broker_heartbeat_interval=max(1.0, settings.session_timeout_seconds / 4),
        stream_buffer_maxsize=GPU_BATCH_MESSAGES,
        # On a rebalance faust waits until every message handed to the agent is
        # acked before it gives partitions up: our in-flight batch finishes (or
        # the worker is gone), so the next owner reads final progress.
        stream_wait_empty=True,
        **web_options(settings),
    )
    metrics.expose(settings.topic("requests"))
    metrics.expose(settings.topic("gpu"))
    feed = RequestFeed.bound(settings, handler, _exit_fatal)
    app.service(feed)

    # One fleet watermark for every evaluator; a partition with messages not yet
    # written is never idle.
    watermark = FleetWatermark(settings, ch, busy=lambda: [tp for tp, lag in _lag(feed).items() if lag > 0])
    metrics.registry.register(watermark.collector())
    gpu_topic = app.topic(settings.topic("gpu"), value_serializer="raw", key_serializer="raw")
    gpu_windows = GpuWindowWriter(settings, ch, metrics.record_gpu_window, watermark)
    gpu_writer = GpuBatchWriter(settings, ch, durable, metrics, gpu_windows)

    @app.agent(gpu_topic, name="gpu-samples")
    async def gpu_samples(stream: faust.StreamT) -> None:
        async for events in stream.noack_take(GPU_BATCH_MESSAGES, within=settings.batch_max_wait_seconds):
            try:
                await gpu_writer.write(_raw(events))
                for event in events:
                    await stream.ack(event)
            except Exception:  # noqa: BLE001 -- anything not retried is fatal
                _exit_fatal(MessageBatch.of(_raw(events)))

    drift = DriftEvaluator(settings, ch, metrics.record_drift, watermark)
    # Bad rules fail here, at start-up. Drift alerts come from the rules alone,
    # on the windows the drift evaluator has stored.
    rules = AlertEvaluator(settings, ch, alerts.publish, gpu_windows.written_end, watermark, drift.stored_span)

    @app.timer(interval=2.0)
    async def evaluate_closed_windows() -> None:
        # On the sink's thread: evaluations and writes never interleave on chDB.
        # GPU windows and drift first: the alert rules read what they just stored.
        top_tenants = lambda: tenants.tick(ch, watermark.last_closed(REQUESTS_AND_GPU))  # noqa: E731
        for name, tick in (("GPU windows", gpu_windows.tick), ("drift", drift.tick), ("alert rules", rules.tick),
                           ("top tenants", top_tenants)):
            try:
                await asyncio.get_running_loop().run_in_executor(durable.executor, tick)
            except (ClickHouseUnavailable, KafkaUnavailable) as exc:
                log.warning("%s evaluation postponed: %s", name, exc)
            except Exception:  # noqa: BLE001 -- an evaluation bug must not stop ingestion
                log.exception("%s evaluation failed; ingestion goes on", name)

    metrics.watch_lag(lambda: _lag(feed))
    add_pages(app, ch, reader, metrics, durable.stalls, settings)
    return app, handler


def _lag(feed) -> dict[tuple[str, int], int]:
    return feed.instance.lag() if feed.instance else {}


def _raw(events) -> list[RawMessage]:
    return [RawMessage(e.message.topic, e.message.partition, e.message.offset, e.value) for e in events]


def _exit_fatal(messages: MessageBatch) -> None:
    """A batch that can neither be written nor retried must not be skipped
    (that would lose it) and must not leave a worker that looks alive but does
    nothing. Exit non-zero, un-acked: a supervisor restarts the worker, which
    consumes the batch again."""
    where = f"{messages.topic}:{messages.partitions[0]}:{messages.offsets[0]}" if len(messages) else messages.topic
    log.critical("cannot make the batch starting at %s durable; exiting (code %d) so the worker "
                 "is restarted", where, EXIT_FATAL, exc_info=True)
    logging.shutdown()
    os._exit(EXIT_FATAL)
