"""Single-event messages reach the windows in whole batches, not one by one:
what a user sees is the batch counter on /metrics, exact totals, and a lag
that drains to zero."""

from __future__ import annotations

import orjson
import pytest
from confluent_kafka import Producer

from tests.clock import RECENT_HOUR
from tests.integration.workers import isolated_settings, metric_value
from tests.events import good_request

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


def test_integral_floats_are_stored_as_integers_with_raw_events_on(kafka_settings, tmp_path_factory, start_worker):
    """JSON Schema counts 5.0 as an integer, so the worker accepts it; it stores
    it as 5, in the windows and in request_events (whose integer columns
    refuse 5.0: once that stopped ingestion)."""
    tmp = tmp_path_factory.mktemp("integral")
    settings = isolated_settings(kafka_settings, tmp, store_raw_events=True)
    worker = start_worker(settings)
    producer = Producer({"bootstrap.servers": settings.bootstrap})
    for i, tokens in enumerate([512, 5.0, 7]):
        event = good_request(**{"request.id": f"int-{i}", "gen_ai.usage.input_tokens": tokens,
                                "timestamp": RECENT_HOUR + i})
        producer.produce(settings.topic("requests"), orjson.dumps(event))
    producer.produce(settings.topic("requests"), orjson.dumps({"type": "batch", "version": 1.0, "events": [
        good_request(**{"request.id": "int-3", "gen_ai.usage.output_tokens": 2.0, "version": 1.0})]}))
    assert producer.flush(30) == 0
    assert worker.wait_for("SELECT count() FROM request_events", 4, timeout=120) == 4
    rows = worker.query("SELECT request_id, input_tokens, output_tokens FROM request_events ORDER BY request_id")
    assert [(r["request_id"], r["input_tokens"], r["output_tokens"]) for r in rows] == [
        ("int-0", 512, 128), ("int-1", 5, 128), ("int-2", 7, 128), ("int-3", 512, 2)]
    assert worker.scalar("SELECT sum(input_tokens) FROM request_windows") == 512 + 5 + 7 + 512
    text = worker.metrics()
    assert metric_value(text, "fleetpulse_events_invalid_total") == 0 and worker.alive()
