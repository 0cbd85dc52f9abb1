"""Recorder and simulator against a real broker: what goes in comes back out, exactly."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections import defaultdict

import pytest
from confluent_kafka import Consumer

from fleetpulse.errors import KafkaUnavailable
from fleetpulse.producers.recorder import Recorder
from fleetpulse.producers.simulator import SimulationConfig, Truth, generate, run_simulation
from fleetpulse.schemas import decode_message
from fleetpulse.settings import Settings
from fleetpulse.topics import ensure_topics

pytestmark = pytest.mark.integration

START = 1_700_000_000.0


@pytest.fixture(scope="module")
def settings(kafka_settings: Settings) -> Settings:
    """Topics of this module's own: other tests write other things to theirs."""
    own = dataclasses.replace(kafka_settings, topic_prefix=f"{kafka_settings.topic_prefix}{uuid.uuid4().hex[:8]}.")
    ensure_topics(own)
    return own


def consume_new(settings: Settings, is_ours, expected: int, timeout: float = 60.0) -> list[tuple[bytes, bytes, list[dict]]]:
    """(key, raw value, events) of every message on the requests topic whose events
    satisfy ``is_ours``, until ``expected`` events are read (fresh group, from the start)."""
    consumer = Consumer({"bootstrap.servers": settings.bootstrap, "group.id": f"test-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([settings.topic("requests")])
    out, count, deadline = [], 0, time.monotonic() + timeout
    try:
        while count < expected and time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=1.0):
                assert msg.error() is None, msg.error()
                decoded = decode_message(msg.value(), "request", 1 << 20)
                assert decoded.dead == []
                if decoded.events and is_ours(decoded.events[0]):
                    out.append((msg.key(), msg.value(), decoded.events, msg.partition()))
                    count += len(decoded.events)
    finally:
        consumer.close()
    return out


def test_envelopes_deliver_every_event_in_node_order(settings):
    run = uuid.uuid4().hex[:8]
    sent = {}
    with Recorder.from_settings(settings, max_message_bytes=16 * 1024) as recorder:
        for i in range(20_000):
            fields = dict(ttft=0.01 * (i % 7), input_tokens=i, output_tokens=i % 300, gpu=str(i % 8),
                          error_type="oom" if i % 97 == 0 else None, finish_reasons=None if i % 97 == 0 else ["stop"],
                          operation="chat", timestamp=START + i / 1000)
            request_id = None if i % 10 == 0 else f"{run}-{i}"  # every tenth gets a generated id
            recorder.record_request(f"model-{i % 3}", f"node-{i % 5}", 0.25 + i % 13, request_id=request_id,
                                    trace_id=request_id and f"{i:032x}", **fields)
            sent[START + i / 1000] = (f"model-{i % 3}", f"node-{i % 5}", 0.25 + i % 13, request_id, fields)
    assert recorder.sent == 20_000 and recorder.failed == recorder.dropped == 0

    ours = consume_new(settings, lambda e: e["timestamp"] in sent, 20_000)
    received = [e for _, _, events, _ in ours for e in events]
    assert len(received) == 20_000
    for e in received:
        model, node, duration, request_id, fields = sent[e["timestamp"]]
        assert (e["gen_ai.request.model"], e["host.name"], e["gen_ai.server.request.duration"]) == (model, node, duration)
        assert e["gen_ai.usage.input_tokens"] == fields["input_tokens"]
        assert e.get("error.type") == fields["error_type"]
        if request_id is None:
            assert uuid.UUID(e["request.id"]).version == 4 and len(e["trace_id"]) == 32
        else:
            assert (e["request.id"], e["trace_id"]) == (request_id, f"{int(e['gen_ai.usage.input_tokens']):032x}")
    assert all(len(raw) <= 16 * 1024 for _, raw, _, _ in ours)
    partitions, last = defaultdict(set), {}
    for key, _, events, partition in ours:
        for e in events:
            assert key == e["host.name"].encode()
            assert e["timestamp"] > last.get(key, 0)  # a node's events arrive in the order recorded
            last[key] = e["timestamp"]
        partitions[key].add(partition)
    assert all(len(p) == 1 for p in partitions.values())


def test_single_events_send_one_event_per_message(settings):
    config = SimulationConfig(count=2000, start=START + 10_000, seed=11)
    events = [e for chunk in generate(config) for e in chunk]
    with Recorder.from_settings(settings, single_events=True) as recorder:
        assert recorder.record_batch(events, block=True) == 2000
    assert recorder.sent == 2000
    ids = {e["request.id"]: e for e in events}
    ours = consume_new(settings, lambda e: e["request.id"] in ids, 2000)
    assert len(ours) == 2000
    assert all(raw.startswith(b'{"type":"request"') for _, raw, _, _ in ours)
    assert sorted((events[0] for _, _, events, _ in ours), key=lambda e: e["timestamp"]) == events


def test_run_simulation_truth_matches_the_topic(settings, tmp_path):
    config = SimulationConfig(count=5000, rate=500, start=START + 20_000, seed=5, pace="fast",
                              burst_every_s=4, burst_len_s=2)
    result = run_simulation(settings, config, truth_path=tmp_path / "truth.jsonl", progress=False)
    assert result.sent == result.truth.requests == 5000
    ids = {e["request.id"] for chunk in generate(config) for e in chunk}
    recomputed = Truth(config.window_seconds)
    for _, _, events, _ in consume_new(settings, lambda e: e["request.id"] in ids, 5000):
        recomputed.add(events)
    assert recomputed.rows() == result.truth.rows()
    assert (tmp_path / "truth.jsonl").read_text().count("\n") == len(result.truth.rows())


def test_realtime_pace_tracks_the_wall_clock(settings):
    config = SimulationConfig(duration_s=1.5, rate=400, seed=2, pace="realtime")
    before = time.time()
    result = run_simulation(settings, config, progress=False)
    assert result.sent == 600
    assert 1.3 <= result.elapsed_s < 5
    assert result.truth.rows()[0]["window_start"] >= (int(before) // 10) * 10


def test_close_against_an_unreachable_broker_fails_clearly_within_its_timeout(settings):
    unreachable = dataclasses.replace(settings, kafka_bootstrap="127.0.0.1:1")
    recorder = Recorder.from_settings(unreachable)
    for _ in range(100):
        recorder.record_request("llama", "node-1", 0.5)
    start = time.monotonic()
    with pytest.raises(KafkaUnavailable) as info:
        recorder.close(timeout=1.0)
    assert time.monotonic() - start < 3.0
    message = str(info.value)
    assert "127.0.0.1:1" in message and "100 events" in message and "\n" not in message
