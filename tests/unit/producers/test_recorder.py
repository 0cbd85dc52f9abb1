"""The Recorder without a broker: framing, ids, drops and their metric, timing, errors."""

from __future__ import annotations

import time
import uuid

import orjson
import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from fleetpulse.errors import KafkaUnavailable
from fleetpulse.producers.envelope import RECORD_FIELDS, TENANT, envelopes, event_from_record, frame, hex_ids
from fleetpulse.producers.recorder import Recorder
from fleetpulse.producers.timer import RequestTimer
from fleetpulse.schemas import decode_message, encode_batch, validate_event

UNREACHABLE = "127.0.0.1:1"


def record(i: int = 0, **fields) -> tuple:
    """The tuple record_request queues, with defaults."""
    base = dict(timestamp=1_700_000_000.0 + i, model="llama", node="node-1", duration=0.5, ttft=None, tpot=None,
                queue_time=None, input_tokens=10, output_tokens=20, error_type=None, finish_reasons=None,
                operation=None, gpu=None, request_id=None, trace_id=None, text=None, expect_format=None,
                cache_read_tokens=None, tenant=None)
    base.update(fields)
    assert tuple(base) == RECORD_FIELDS
    return tuple(base.values())


def test_record_becomes_a_valid_event_without_null_fields():
    event = event_from_record(record(ttft=0.1, finish_reasons=["stop"]), "a" * 32, "b" * 32)
    validate_event(event, "request")
    assert event["gen_ai.server.time_to_first_token"] == 0.1
    assert event["request.id"] == "a" * 32
    assert "error.type" not in event and "gpu.id" not in event


def test_given_ids_win_over_generated_ones():
    event = event_from_record(record(request_id="req-1", trace_id="t" * 32), "a" * 32, "b" * 32)
    assert (event["request.id"], event["trace_id"]) == ("req-1", "t" * 32)


def test_ids_are_uuid4_and_trace_ids_and_deterministic_from_bytes():
    request_ids, trace_ids = hex_ids(100)
    assert len(set(request_ids)) == 100
    assert all(uuid.UUID(r).version == 4 and uuid.UUID(r).hex == r for r in request_ids)
    assert all(len(t) == 32 and int(t, 16) >= 0 for t in trace_ids)
    seed = bytes(range(64))
    assert hex_ids(2, seed) == hex_ids(2, seed)


def test_framing_is_byte_identical_to_encode_batch():
    events = [event_from_record(record(i), *hex_ids(1)[0], *hex_ids(1)[1]) for i in range(5)]
    assert frame([orjson.dumps(e) for e in events]) == encode_batch(events)
    assert frame([]) == encode_batch([])


def test_envelopes_stay_under_the_byte_cap_and_keep_every_event_in_order():
    events = [event_from_record(record(i, finish_reasons=["stop"] * 50), f"r{i}", "t") for i in range(3000)]
    encoded = [orjson.dumps(e) for e in events]
    cap = 64 * 1024
    out = list(envelopes(encoded, max_bytes=cap, max_events=10_000))
    assert len(out) > 1
    assert all(len(value) <= cap for value, _ in out)
    decoded = [e for value, n in out for e in decode_message(value, "request", cap).events]
    assert decoded == events
    assert sum(n for _, n in out) == 3000


def test_envelopes_respect_the_event_count_and_send_an_oversized_event_alone():
    encoded = [orjson.dumps({"i": i}) for i in range(1001)]
    assert [n for _, n in envelopes(encoded, max_events=500)] == [500, 500, 1]
    huge = b'"' + b"x" * 1000 + b'"'
    assert [n for _, n in envelopes([b"1", huge, b"2"], max_bytes=200)] == [1, 1, 1]


def test_full_buffer_drops_and_counts_on_the_registry_given():
    registry = CollectorRegistry()
    recorder = Recorder(UNREACHABLE, "t", max_buffer=5, linger_s=30, registry=registry)
    accepted = [recorder.record_request("llama", "node-1", 0.5) for _ in range(12)]
    assert accepted == [True] * 5 + [False] * 7
    assert recorder.dropped == 7
    text = generate_latest(registry).decode()
    assert "fleetpulse_recorder_dropped_events_total 7.0" in text
    assert "fleetpulse_recorder_dropped_events_total" not in generate_latest(REGISTRY).decode()
    with pytest.raises(KafkaUnavailable, match=UNREACHABLE):
        recorder.close(timeout=0.2)
    assert recorder.failed == 5
    assert "fleetpulse_recorder_failed_events_total 5.0" in generate_latest(registry).decode()


def test_record_batch_blocks_or_drops_when_full():
    recorder = Recorder(UNREACHABLE, "t", max_buffer=4, linger_s=30)
    assert recorder.record_batch([{"host.name": "n"}] * 10) == 4
    assert recorder.dropped == 6
    with pytest.raises(KafkaUnavailable):
        recorder.close(timeout=0.1)


def test_records_after_close_are_dropped():
    recorder = Recorder(UNREACHABLE, "t")
    recorder.close(timeout=0.1)  # nothing buffered: nothing to report
    assert recorder.record_request("llama", "node-1", 0.5) is False
    assert recorder.dropped == 1


def test_record_request_does_not_block_the_caller():
    recorder = Recorder(UNREACHABLE, "t", max_buffer=1_000_000)
    start = time.perf_counter()
    for i in range(20_000):
        recorder.record_request("llama", "node-1", 0.5, ttft=0.1, input_tokens=100, output_tokens=i)
    per_call = (time.perf_counter() - start) / 20_000
    assert per_call < 20e-6  # 5 µs is the target (bench/); this only catches blocking
    with pytest.raises(KafkaUnavailable):
        recorder.close(timeout=0.1)


class Sink:
    """Stands in for the Recorder: RequestTimer's output is its record_request call."""

    def record_request(self, model, node, duration, **fields):
        self.event = dict(model=model, node=node, duration=duration, **fields)


def test_time_request_measures_and_derives_tpot():
    sink = Sink()
    with RequestTimer(sink, "llama", "node-1", input_tokens=7) as req:
        time.sleep(0.01)
        req.first_token()
        time.sleep(0.01)
        req.output_tokens = 11
    event = sink.event
    assert event["error_type"] is None and event["input_tokens"] == 7
    assert 0.01 <= event["ttft"] < event["duration"]
    assert event["tpot"] == pytest.approx((event["duration"] - event["ttft"]) / 10)


def test_time_request_records_the_exception_class_and_reraises():
    sink = Sink()
    with pytest.raises(TimeoutError):
        with RequestTimer(sink, "llama", "node-1"):
            raise TimeoutError("upstream")
    assert sink.event["error_type"] == "TimeoutError"
    assert sink.event["duration"] > 0


def test_tenants_are_hashed_on_the_recorders_thread_when_asked():
    from fleetpulse.producers.tenant import hash_tenant

    recorder = Recorder(UNREACHABLE, "t", linger_s=30, hash_tenants=True, tenant_salt="pepper")
    recorder.record_request("llama", "node-1", 0.5, tenant="alice@example.com")
    queued = list(recorder._buffer)
    assert queued[0][TENANT] == "alice@example.com"  # the caller's thread only queues it
    sent = []
    recorder._produce = lambda value, key, n: sent.append(value)
    recorder._send(queued)
    event = decode_message(sent[0], "request", 1 << 20).events[0]
    assert event["fleetpulse.tenant"] == hash_tenant("alice@example.com", b"pepper")
    assert b"alice" not in sent[0]
    recorder._buffer.clear()
    recorder.close(timeout=0.1)
