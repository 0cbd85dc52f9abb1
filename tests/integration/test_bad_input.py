"""Bad input never stops the worker: good events count, bad ones go to the
dead-letter topic with their reason and original bytes."""

from __future__ import annotations

import urllib.error

import orjson
import pytest
from confluent_kafka import Producer

from tests.clock import RECENT_HOUR
from tests.integration.workers import isolated_settings, metric_value, read_dead_letters
from tests.events import good_request

pytestmark = pytest.mark.integration

MAX_BYTES = 256 * 1024  # the mixed envelope below (~120 KB) stays under it


def event(i: int, **overrides) -> dict:
    return good_request(**{"request.id": f"r-{i}", "timestamp": RECENT_HOUR + i * 0.01, **overrides})


def bad_inputs() -> list[tuple[bytes, str]]:
    """(message bytes, expected start of the reason) for each whole bad message."""
    nan_event = orjson.dumps(event(900)).replace(b'"gen_ai.server.request.duration":0.84',
                                                 b'"gen_ai.server.request.duration":NaN')
    oversized = orjson.dumps(event(905, padding="x" * (MAX_BYTES + 10)))
    # Over the broker's ~1 MiB limit uncompressed, under it compressed: it gets in,
    # and its dead letter must get out whole.
    huge = orjson.dumps(event(906, padding="y" * 3_000_000))
    return [
        (b'{"type": "request", "version": 1, "timestamp": ', "message: not valid JSON"),
        (b"\x00\x01\x02 binary", "message: not valid JSON"),
        (orjson.dumps(event(901, **{"gen_ai.usage.input_tokens": "512"})),
         "gen_ai.usage.input_tokens: expected an integer, got str"),
        (orjson.dumps(event(902, **{"gen_ai.server.request.duration": -0.5})),
         "gen_ai.server.request.duration: must be >= 0"),
        (nan_event, "gen_ai.server.request.duration: must be finite, got nan"),
        (orjson.dumps(event(903, version=7)), "version: unknown version 7"),
        (orjson.dumps({"type": "batch", "version": 3, "events": [event(904)]}), "batch version: unknown version 3"),
        (oversized, f"message: {len(oversized)} bytes is over the {MAX_BYTES}-byte limit"),
        (huge, f"message: {len(huge)} bytes is over the {MAX_BYTES}-byte limit"),
    ]


def test_bad_input_is_dead_lettered_and_good_input_counted(kafka_settings, tmp_path_factory, start_worker):
    tmp = tmp_path_factory.mktemp("bad")
    settings = isolated_settings(kafka_settings, tmp, max_message_bytes=MAX_BYTES)
    worker = start_worker(settings)
    producer = Producer({"bootstrap.servers": settings.bootstrap, "message.max.bytes": 8_000_000,
                         "compression.type": "lz4"})
    topic = settings.topic("requests")

    good = [event(i) for i in range(300)]
    envelope_bad = [event(400, **{"gen_ai.server.request.duration": -1}), event(401, **{"host.name": 5})]
    for e in good[:100]:
        producer.produce(topic, orjson.dumps(e))
    wire = bad_inputs()
    for raw, _ in wire:
        producer.produce(topic, raw)
    # One envelope mixing good and bad events: the good ones must still count.
    mixed = orjson.dumps({"type": "batch", "version": 1,
                          "events": good[100:200] + envelope_bad + good[200:300]})
    producer.produce(topic, mixed)
    assert producer.flush(30) == 0

    assert worker.wait_for("SELECT sum(requests) FROM request_stats", 300, timeout=120) == 300
    letters = read_dead_letters(settings, len(wire) + len(envelope_bad))
    assert len(letters) == len(wire) + len(envelope_bad)
    by_value = {value: headers for value, headers in letters}
    for raw, reason in wire:
        headers = by_value[raw]  # the original bytes, unchanged
        assert headers["fleetpulse.reason"].startswith(reason), headers
        assert headers["fleetpulse.source"].startswith(f"{topic}:")
    envelope_reasons = sorted(h["fleetpulse.reason"] for v, h in letters if v not in dict(wire))
    assert envelope_reasons[0].startswith("events[100].gen_ai.server.request.duration: must be >= 0")
    assert envelope_reasons[1].startswith("events[101].host.name: expected a string, got int")

    text = worker.wait_for_metric("fleetpulse_events_in_total", 300, topic=topic)
    assert metric_value(text, "fleetpulse_events_invalid_total", topic=topic) == len(wire) + len(envelope_bad)
    assert metric_value(text, "fleetpulse_events_invalid_total", field="message") == 4
    assert f'fleetpulse_events_dropped_total{{topic="{topic}"}} 0.0' in text
    assert metric_value(text, "fleetpulse_events_in_total", topic=topic) == 300

    # Queries that are not reads are refused, and leave ingestion untouched.
    for sql in ("DROP TABLE request_windows", "SET max_threads = 1", "SELECT * FROM no_such_table"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            worker.query(sql)
        assert refused.value.code == 400

    # Still running, still counting.
    assert worker.alive()
    producer.produce(topic, orjson.dumps(event(999)))
    producer.flush(10)
    assert worker.wait_for("SELECT sum(requests) FROM request_stats", 301, timeout=60) == 301
    assert worker.stop() == 0


def test_an_envelope_of_150_days_is_stored_whole_with_raw_events_on(kafka_settings, tmp_path_factory, start_worker):
    """Valid, but over ClickHouse's 100 partitions per INSERT for request_events
    (one per day): once it was retried for ever as 'unavailable' while /health
    said ok. Now every event counts, in the windows and in request_events."""
    tmp = tmp_path_factory.mktemp("days")
    settings = isolated_settings(kafka_settings, tmp, store_raw_events=True, health_stall_seconds=10,
                                 windows_ttl_days=200, raw_events_ttl_days=200)  # all 150 days are kept
    worker = start_worker(settings)
    producer = Producer({"bootstrap.servers": settings.bootstrap})
    topic = settings.topic("requests")
    before = [event(i) for i in range(100)]
    days = [event(1000 + d, timestamp=RECENT_HOUR + 5 - d * 86400) for d in range(150)]  # mostly late: they count
    after = [event(2000 + i, timestamp=RECENT_HOUR + 10 + i * 0.01) for i in range(100)]
    for e in before:
        producer.produce(topic, orjson.dumps(e))
    producer.produce(topic, orjson.dumps({"type": "batch", "version": 1, "events": days}))
    for e in after:
        producer.produce(topic, orjson.dumps(e))
    assert producer.flush(30) == 0

    sent = len(before) + len(days) + len(after)
    assert worker.wait_for("SELECT sum(requests) FROM request_stats", sent, timeout=120) == sent, worker.log_tail()
    assert worker.scalar("SELECT sum(requests) FROM request_windows") == sent
    assert worker.wait_for("SELECT count() FROM request_events FINAL", sent, timeout=30) == sent
    assert worker.scalar("SELECT uniqExact(toYYYYMMDD(timestamp)) FROM request_events") == 150
    text = worker.wait_for_metric("fleetpulse_rows_written_total", sent, table="request_events")
    assert metric_value(text, "fleetpulse_sink_retries_total") == 0, worker.log_tail()
    assert metric_value(text, "fleetpulse_events_invalid_total") == 0
    assert worker.health() == (200, {"status": "ok"})
    assert worker.stop() == 0
