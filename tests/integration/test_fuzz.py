"""A fuzz run through the real broker and worker, from a fixed seed.

Tens of thousands of mutated messages (boundary numbers, retyped and deleted
fields, byte flips, truncation, deep nesting, unicode and lone surrogates, NaN,
big integers, duplicate keys, other encodings, envelopes mixing good and bad
events) go to a worker on default settings. An independent oracle (the stdlib
parser and the published JSON Schema files, through the jsonschema package)
says which events are valid. The worker must store exactly those, write
exactly one dead letter for each rejected event (or message), print no
traceback and stay alive.

The oracle's documented differences from JSON Schema alone (docs/schemas.md):
numbers in schema fields must be finite; strings must be Unicode text (no lone
surrogates, valid UTF-8); messages are UTF-8 without a BOM; events older than
the windows' retention, or further ahead of the clock than
FLEETPULSE_MAX_CLOCK_SKEW_SECONDS, are dead-lettered.

FLEETPULSE_FUZZ_MESSAGES sets the size (default 20,000); bench/ is the place
for longer runs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import time
from pathlib import Path

import jsonschema
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from tests.clock import RECENT_HOUR
from tests.integration.workers import isolated_settings, metric_value
from tests.events import good_request

pytestmark = pytest.mark.integration

SEED = 20261201
MESSAGES = int(os.environ.get("FLEETPULSE_FUZZ_MESSAGES", "20000"))
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "json"
REQUEST_SCHEMA = jsonschema.Draft202012Validator(json.loads((SCHEMA_DIR / "request.v1.json").read_text()))
NUMERIC = [name for name, spec in json.loads((SCHEMA_DIR / "request.v1.json").read_text())["properties"].items()
           if "number" in str(spec.get("type")) or "integer" in str(spec.get("type"))]
TTL_S = 30 * 86400  # FLEETPULSE_WINDOWS_TTL_DAYS, the default


@dataclasses.dataclass
class Message:
    raw: bytes
    valid: int  # events the oracle accepts
    dead: int  # dead letters the worker must write


class Oracle:
    """Which events are valid, without the worker's code."""

    def __init__(self, window_seconds: int, max_clock_skew: float):
        self.window_seconds = window_seconds
        self.oldest = time.time() - TTL_S
        # A byte flipped in a timestamp's digits can date an event years ahead
        # (1764... -> 1964...): valid JSON Schema, but beyond the clock-skew bound.
        self.newest = time.time() + max_clock_skew

    def message(self, raw: bytes, parts: list[bytes] | None) -> Message:
        """``parts``: the bytes of each event when ``raw`` is an envelope the
        generator built from them (its framing untouched), else None."""
        if parts is not None:
            verdicts = [self.event_bytes(p) for p in parts]
            return Message(raw, sum(verdicts), len(verdicts) - sum(verdicts))
        try:
            obj = self.parse(raw)
        except ValueError:
            return Message(raw, 0, 1)
        if isinstance(obj, dict) and obj.get("type") == "batch":
            if obj.get("version") != 1 or isinstance(obj.get("version"), bool) or not isinstance(obj.get("events"), list):
                return Message(raw, 0, 1)
            verdicts = [self.event(e) for e in obj["events"]]
            return Message(raw, sum(verdicts), len(verdicts) - sum(verdicts))
        ok = self.event(obj)
        return Message(raw, int(ok), 1 - int(ok))

    @staticmethod
    def parse(raw: bytes) -> object:
        if raw.startswith(b"\xef\xbb\xbf"):
            raise ValueError("a BOM")
        try:
            return json.loads(raw.decode("utf-8", errors="surrogateescape"))  # bad bytes -> lone surrogates
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise ValueError(str(exc)) from None

    def event_bytes(self, raw: bytes) -> bool:
        try:
            return self.event(self.parse(raw))
        except ValueError:
            return False

    def event(self, obj: object) -> bool:
        try:
            if not REQUEST_SCHEMA.is_valid(obj):
                return False
        except RecursionError:
            return False
        finite = all(not isinstance(obj.get(n), float) or obj[n] - obj[n] == 0 for n in NUMERIC)
        start = obj["timestamp"] // self.window_seconds * self.window_seconds
        return finite and _unicode(obj) and self.oldest <= start and obj["timestamp"] <= self.newest


def _unicode(value: object) -> bool:
    """Every string (keys too) is text UTF-8 can hold; iterative, for any depth."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


class Fuzzer:
    SAFE_BYTES = b"abcxyz0123456789 \x80\xc3\xff\xfe\xed"  # flips that never move an event's boundaries

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.n = 0

    def event(self) -> dict:
        self.n += 1
        r = self.rng
        return good_request(**{"request.id": f"f{self.n}", "host.name": f"node-{r.randrange(8)}",
                               "gen_ai.request.model": r.choice(["m-a", "m-b", "模型-ü"]),
                               "timestamp": RECENT_HOUR + r.uniform(0, 3000)})

    def value(self) -> object:
        r = self.rng
        return r.choice([
            0, -1, 2**31, 2**63, 2**64, -2**63, 1e308, -0.0, 5e-324, 5.0, 1.5, True, None, "", "x" * 300,
            "ok", [], {}, ["stop"], {"a": 1}, "\u202eevil", "😀", 946684799, 4102444801,
        ])

    KINDS = ["boundary", "retype", "delete", "deep", "unicode", "surrogate", "nan", "bigint", "duplicate", "old",
             "unknown"]

    def mutate_event(self, event: dict) -> str:
        """The event as JSON text: unchanged, or with one or two field-level mutations."""
        r = self.rng
        kinds = set() if r.random() < 0.35 else set(r.sample(self.KINDS, r.choice([1, 1, 2])))
        for kind in kinds & {"boundary", "retype", "delete", "unicode", "old", "unknown"}:
            name = r.choice(list(event))
            if kind in ("boundary", "retype"):
                event[name] = self.value()
                if name == "timestamp" and event[name] == 2**31:
                    event[name] = 2**64  # a valid time in 2038 is issue 14's bad clock, not a decoding case
            elif kind == "delete":
                del event[name]
            elif kind == "unicode":
                event[name] = "".join(chr(r.choice([0x41, 0xe9, 0x4e2d, 0x1f600, 0x202e, 0x0])) for _ in range(5))
            elif kind == "old":
                event["timestamp"] = time.time() - r.choice([31, 60, 400]) * 86400
            else:
                event[f"x-{r.randrange(100)}"] = self.value()
        text = json.dumps(event)
        for kind in kinds:
            if kind == "deep":
                depth = r.choice([5, 50, 300, 600, 3000])
                text = text[:-1] + f', "nested": {"[" * depth}1{"]" * depth}}}'
            elif kind == "surrogate":
                text = text[:-1] + (', "x": "\\ud800"}' if r.random() < 0.5 else ', "host.name": "a\\udc00"}')
            elif kind == "nan":
                target = r.choice(["gen_ai.server.request.duration", "gen_ai.server.time_to_first_token", "extra"])
                text = text[:-1] + f', "{target}": {r.choice(["NaN", "Infinity", "-Infinity"])}}}'
            elif kind == "bigint":
                target = r.choice(["gen_ai.usage.input_tokens", "extra"])
                text = text[:-1] + f', "{target}": 18446744073709551616}}'
            elif kind == "duplicate":  # the last one wins, in every parser involved
                text = text[:-1] + ', "host.name": ' + r.choice(['"dup"', "7", "null"]) + "}"
        return text

    def flip(self, data: bytes, lo: int, hi: int) -> bytes:
        """One byte in [lo, hi) replaced by a safe byte, skipping structural characters."""
        for _ in range(10):
            at = self.rng.randrange(lo, hi)
            if data[at:at + 1] not in b'"\\[]{},:':
                return data[:at] + bytes([self.rng.choice(self.SAFE_BYTES)]) + data[at + 1:]
        return data

    def message(self) -> tuple[bytes, list[bytes] | None]:
        r = self.rng
        if r.random() < 0.6:  # a single event per message
            raw = self.mutate_event(self.event()).encode("utf-8", errors="surrogatepass")
            whole = r.random()
            if whole < 0.05:
                return raw[:r.randrange(len(raw))], None
            if whole < 0.10:
                return self.flip(raw, 0, len(raw)), None
            if whole < 0.13:
                return r.choice([raw.decode("utf-8", "surrogatepass").encode("utf-16", "surrogatepass"),
                                 raw.decode("utf-8", "surrogatepass").encode("utf-32", "surrogatepass"),
                                 b"\xef\xbb\xbf" + raw]), None
            return raw, None
        parts = [self.mutate_event(self.event()).encode() for _ in range(r.randrange(1, 12))]
        if r.random() < 0.1 and parts:  # a byte flip inside one event, its framing intact
            k = r.randrange(len(parts))
            if len(parts[k]) > 2:
                parts[k] = self.flip(parts[k], 1, len(parts[k]) - 1)
        raw = b'{"type": "batch", "version": 1, "events": [' + b", ".join(parts) + b"]}"
        whole = r.random()
        if whole < 0.03:
            return raw[:r.randrange(len(raw))], None
        if whole < 0.05:
            return raw.replace(b'"version": 1', b'"version": 2'), None
        return raw, parts


def test_fuzzed_messages_end_as_exact_counts_and_one_dead_letter_per_rejection(kafka_settings, tmp_path_factory,
                                                                                start_worker):
    tmp = tmp_path_factory.mktemp("fuzz")
    settings = isolated_settings(kafka_settings, tmp)
    worker = start_worker(settings)
    oracle, fuzzer = Oracle(settings.window_seconds, settings.max_clock_skew_seconds), Fuzzer(SEED)
    expected = [oracle.message(*fuzzer.message()) for _ in range(MESSAGES)]
    valid, dead = sum(m.valid for m in expected), sum(m.dead for m in expected)
    print(f"{MESSAGES} messages, {valid + dead} outcomes: {valid} valid events, {dead} dead letters expected")
    assert valid > MESSAGES // 2 and dead > MESSAGES // 10, "the mix must hold plenty of both"

    producer = Producer({"bootstrap.servers": settings.bootstrap, "linger.ms": 20, "compression.type": "lz4"})
    for m in expected:
        producer.produce(settings.topic("requests"), m.raw)
        producer.poll(0)
    assert producer.flush(60) == 0

    deadline = time.monotonic() + 300
    stored = counted_dead = None
    while time.monotonic() < deadline:
        assert worker.alive(), worker.log_tail()
        stored = worker.scalar("SELECT sum(requests) FROM request_windows") or 0
        counted_dead = metric_value(worker.metrics(), "fleetpulse_events_invalid_total")
        if stored >= valid and counted_dead >= dead:
            break
        time.sleep(0.5)
    assert (stored, counted_dead) == (valid, dead), worker.log_tail()
    assert dead_letters_on_topic(settings) == dead, "exactly one dead letter per rejection"
    assert worker.alive()
    log = worker.log_path.read_text(errors="replace")
    assert "Traceback" not in log and "CRITICAL" not in log


def dead_letters_on_topic(settings) -> int:
    consumer = Consumer({"bootstrap.servers": settings.bootstrap, "group.id": "fuzz-count"})
    try:
        topic = settings.topic("deadletter")
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions)
    finally:
        consumer.close()
