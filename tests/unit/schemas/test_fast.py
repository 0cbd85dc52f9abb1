"""The fast path (schemas.fast.decode_requests) against the validator
(schemas.validate.decode_message): for every message, the same valid events
with the same values, the same dead letters (reason and bytes), and the fast
path actually taken for ordinary input."""

from __future__ import annotations

import json
import math
import time

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetpulse.errors import ValidationError
from fleetpulse.producers.simulator import SimulationConfig, generate
from fleetpulse.schemas import REQUEST, decode_message, encode_batch, validate_event
from fleetpulse.schemas.fast import MAX_DEPTH, RequestEvent, decode_requests
from fleetpulse.schemas.fields import MAX_TIMESTAMP, MIN_TIMESTAMP
from tests.integration.test_bad_input import MAX_BYTES as BAD_INPUT_MAX_BYTES
from tests.integration.test_bad_input import bad_inputs
from tests.integration.test_fuzz import MESSAGES, SEED, Fuzzer
from tests.unit.schemas.test_validate_properties import event_bytes
from tests.events import good_request

MAX_BYTES = 1 << 20
FIELDS = msgspec.structs.fields(RequestEvent)
#: Wire name -> attribute, read off the struct itself (not the code under test's own table).
WIRE = {f.encode_name: f.name for f in FIELDS}
KIND = {f.name: f.kind for f in REQUEST}
PYTHON_TYPE = {"number": float, "integer": int, "string": str, "string_list": tuple}


def as_event(event: dict) -> RequestEvent:
    """The validator's dict as a RequestEvent, converted independently of schemas.fast."""
    return RequestEvent(**{WIRE[k]: tuple(v) if isinstance(v, list) else v for k, v in event.items() if k in WIRE})


def assert_typed(event: RequestEvent) -> None:
    """Every value has its attribute's Python type (int 5, not 5.0; 2.0, not 2; tuples, not lists)."""
    for f in FIELDS:
        value = getattr(event, f.name)
        assert value is None or type(value) is PYTHON_TYPE[KIND[f.encode_name]], (f.name, value)


def assert_equivalent(values: list[bytes], max_bytes: int = MAX_BYTES):
    """decode_requests on the batch agrees, message by message, with decode_message on each message."""
    batch = decode_requests(values, max_bytes)
    assert len(batch.per_message) == len(values) and sum(batch.per_message) == len(batch.events)
    assert [i for i, _ in batch.dead] == sorted(i for i, _ in batch.dead)
    assert set(i for i, _ in batch.dead) <= set(batch.slow)
    start = 0
    for i, raw in enumerate(values):
        decoded = decode_message(raw, "request", max_bytes)
        got = batch.events[start:start + batch.per_message[i]]
        start += batch.per_message[i]
        assert got == [as_event(e) for e in decoded.events], (i, raw[:300])
        assert [letter for j, letter in batch.dead if j == i] == decoded.dead, (i, raw[:300])
        for event in got:
            assert_typed(event)
    return batch


GOOD = good_request(**{"gen_ai.response.finish_reasons": ["stop"], "gpu.id": "GPU-1"})
GOOD_TEXT = json.dumps(GOOD)


def with_text(name: str, *texts: str, event: dict = GOOD) -> bytes:
    """The good event with ``name`` written last as each JSON text in turn (several: duplicate keys)."""
    head = json.dumps({k: v for k, v in event.items() if k != name})[:-1]
    return (head + "".join(f", {json.dumps(name)}: {text}" for text in texts) + "}").encode("utf-8", "surrogatepass")


def without(name: str) -> bytes:
    return json.dumps({k: v for k, v in GOOD.items() if k != name}).encode()


def envelope(*parts: bytes, head: bytes = b'"type": "batch", "version": 1') -> bytes:
    return b"{" + head + b', "events": [' + b", ".join(parts) + b"]}"


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def text(value: str) -> str:
    return json.dumps(value)


def tokens(value: str) -> bytes:
    return with_text("gen_ai.usage.input_tokens", value)


def unknown_string(raw: bytes) -> bytes:
    """The good event with an unknown field holding a string of these bytes, unchecked."""
    return with_text("x", '"?"').replace(b'"?"', b'"' + raw + b'"')


# (id, message, which path decides it when it comes alone: "fast" or "slow")
TRAPS = [
    ("good", GOOD_TEXT.encode(), "fast"),
    # unknown fields
    ("unknown flat field", with_text("x-extra", '"v"'), "fast"),
    ("unknown object field", with_text("attrs", '{"a": {"b": [1, 2, {"c": null}]}, "n": 18446744073709551616}'),
     "fast"),
    ("unknown field, MAX_DEPTH brackets in all", with_text("x", deep(MAX_DEPTH - 2)), "fast"),  # + '{' and '['
    ("unknown field, one bracket more", with_text("x", deep(MAX_DEPTH - 1)), "slow"),
    ("unknown field 300 deep", with_text("x", deep(300)), "slow"),
    ("unknown field 1000 deep", with_text("x", deep(1000)), "slow"),
    ("unknown field 1500 deep", with_text("x", deep(1500)), "slow"),
    ("unknown field 5000 deep", with_text("x", deep(5000)), "slow"),
    ("unknown objects 300 deep", with_text("x", '{"a":' * 300 + "1" + "}" * 300), "slow"),
    ("brackets in a string", with_text("gen_ai.request.model", text("[{" * 40)), "slow"),
    ("unknown field NaN", with_text("x", "NaN"), "slow"),
    ("unknown field 1e400", with_text("x", "1e400"), "fast"),
    ("unknown field 400-digit integer", with_text("x", "9" * 400), "fast"),
    ("unknown field 5000-digit integer", with_text("x", "7" * 5000), "slow"),
    ("unknown field 5000-digit float", with_text("x", "7" * 5000 + ".5"), "slow"),
    ("digits in a long string", with_text("x", text("1" * 4400)), "slow"),
    # duplicate keys: the last one wins
    ("duplicate, both valid", with_text("host.name", '"a"', '"b"'), "fast"),
    ("duplicate, last invalid", with_text("host.name", '"a"', "7"), "slow"),
    ("duplicate, first invalid", with_text("host.name", "7", '"b"'), "slow"),
    ("duplicate type, last gpu", with_text("type", '"request"', '"gpu"'), "slow"),
    ("duplicate type, last request", with_text("type", '"gpu"', '"request"'), "slow"),
    ("duplicate type, first batch", with_text("type", '"batch"', '"request"'), "slow"),
    ("duplicate version, last 1", with_text("version", "2", "1"), "slow"),
    ("duplicate tokens, last integral float", with_text("gen_ai.usage.input_tokens", "5", "5.0"), "slow"),
    ("duplicate by an escaped key", GOOD_TEXT[:-1].encode() + b', "host\\u002ename": 7}', "slow"),
    ("escaped key", without("host.name")[:-1] + b', "host\\u002ename": "n"}', "fast"),
    # lone surrogates, bytes that are not UTF-8, other encodings
    ("lone surrogate in a field", with_text("host.name", '"\\ud800"'), "slow"),
    ("lone low surrogate in a field", with_text("host.name", '"a\\udfffb"'), "slow"),
    ("high surrogate then a letter", with_text("host.name", '"\\ud800\\u0041"'), "slow"),
    ("lone surrogate in an unknown field", with_text("x", '"\\udc00"'), "slow"),
    ("lone surrogate in a key", GOOD_TEXT[:-1].encode() + b', "\\ud800": 1}', "slow"),
    ("surrogate pair (valid)", with_text("host.name", '"\\ud83d\\ude00"'), "fast"),
    ("not UTF-8 in an unknown field", unknown_string(b"\xff"), "slow"),
    ("not UTF-8 in a field", GOOD_TEXT.replace('"node-01"', '"node-\udcff"').encode("utf-8", "surrogateescape"),
     "slow"),
    ("not UTF-8 in a key", with_text("x\udcff", "1").replace(b"\\udcff", b"\xff"), "slow"),
    ("overlong UTF-8", unknown_string(b"\xc0\xaf"), "slow"),
    ("UTF-8 encoded surrogate", unknown_string(b"\xed\xa0\x80"), "slow"),
    ("truncated UTF-8", unknown_string(b"\xe2\x82"), "slow"),
    ("BOM", b"\xef\xbb\xbf" + GOOD_TEXT.encode(), "slow"),
    ("UTF-16", GOOD_TEXT.encode("utf-16"), "slow"),
    ("UTF-32", GOOD_TEXT.encode("utf-32"), "slow"),
    ("raw control character", unknown_string(b"\x01"), "slow"),
    ("escaped NUL and slash", with_text("host.name", '"a\\u0000\\/b"'), "fast"),
    ("non-ASCII text", with_text("gen_ai.request.model", text("模型-ü")), "fast"),
    # numbers
    ("NaN duration", with_text("gen_ai.server.request.duration", "NaN"), "slow"),
    ("Infinity duration", with_text("gen_ai.server.request.duration", "Infinity"), "slow"),
    ("-Infinity ttft", with_text("gen_ai.server.time_to_first_token", "-Infinity"), "slow"),
    ("1e400 duration", with_text("gen_ai.server.request.duration", "1e400"), "slow"),
    ("-1e400 timestamp", with_text("timestamp", "-1e400"), "slow"),
    ("2**64 tokens", tokens(str(2**64)), "slow"),
    ("2**64 duration", with_text("gen_ai.server.request.duration", str(2**64)), "slow"),
    ("-2**63-1 tokens", tokens(str(-2**63 - 1)), "slow"),
    ("5000-digit tokens", tokens("9" * 5000), "slow"),
    ("true duration", with_text("gen_ai.server.request.duration", "true"), "slow"),
    ("false tokens", tokens("false"), "slow"),
    ("true version", with_text("version", "true"), "slow"),
    ("integral float tokens", tokens("5.0"), "slow"),
    ("integral float tokens in exponent form", tokens("1e2"), "slow"),
    ("negative zero float tokens", tokens("-0.0"), "slow"),
    ("negative zero integer tokens", tokens("-0"), "fast"),
    ("fractional tokens", tokens("5.5"), "slow"),
    ("tokens at the maximum", tokens("10000000"), "fast"),
    ("tokens past the maximum", tokens("10000001"), "slow"),
    ("version 1.0", with_text("version", "1.0"), "slow"),
    ('version "1"', with_text("version", '"1"'), "slow"),
    ("version 2", with_text("version", "2"), "slow"),
    ("version missing", without("version"), "slow"),
    ("timestamp at the minimum", with_text("timestamp", repr(MIN_TIMESTAMP)), "fast"),
    ("timestamp at the maximum", with_text("timestamp", repr(MAX_TIMESTAMP)), "fast"),
    ("timestamp below the minimum", with_text("timestamp", repr(math.nextafter(MIN_TIMESTAMP, 0))), "slow"),
    ("timestamp above the maximum", with_text("timestamp", repr(math.nextafter(MAX_TIMESTAMP, math.inf))), "slow"),
    ("timestamp as an integer", with_text("timestamp", "1764000000"), "fast"),
    ("timestamp at the maximum, as an integer", with_text("timestamp", "4102444800"), "fast"),
    ("timestamp in milliseconds", with_text("timestamp", "1764000000250"), "slow"),
    ("duration 0", with_text("gen_ai.server.request.duration", "0"), "fast"),
    ("duration -0.0", with_text("gen_ai.server.request.duration", "-0.0"), "fast"),
    ("duration 3600", with_text("gen_ai.server.request.duration", "3600"), "fast"),
    ("duration 3600.0", with_text("gen_ai.server.request.duration", "3600.0"), "fast"),
    ("duration just past 3600", with_text("gen_ai.server.request.duration", "3600.0000000000005"), "slow"),
    ("duration tiny negative", with_text("gen_ai.server.request.duration", "-1e-300"), "slow"),
    ("duration underflow to 0", with_text("gen_ai.server.request.duration", "1e-400"), "fast"),
    ("duration as a string", with_text("gen_ai.server.request.duration", '"0.5"'), "slow"),
    ("duration with many digits", with_text("gen_ai.server.request.duration", "0.1000000000000000055511151231257827"),
     "fast"),
    # strings
    ("empty id", with_text("request.id", '""'), "slow"),
    ("id at max length", with_text("request.id", text("x" * 128)), "fast"),
    ("id past max length", with_text("request.id", text("x" * 129)), "slow"),
    ("astral id at max length", with_text("request.id", text("😀" * 128)), "fast"),
    ("astral id past max length", with_text("request.id", text("😀" * 129)), "slow"),
    ("escaped id at max length", with_text("request.id", "\"" + "\\u00e9" * 128 + "\""), "fast"),
    ("escaped id past max length", with_text("request.id", "\"" + "\\u00e9" * 129 + "\""), "slow"),
    ("trace id past max length", with_text("trace_id", text("a" * 65)), "slow"),
    ("type gpu", with_text("type", '"gpu"'), "slow"),
    ("type missing", without("type"), "slow"),
    ("type null", with_text("type", "null"), "slow"),
    ("type escaped", with_text("type", '"re\\u0071uest"'), "fast"),
    ("host as a number", with_text("host.name", "5"), "slow"),
    ("host null", with_text("host.name", "null"), "slow"),
    ("trace id missing", without("trace_id"), "slow"),
    ("gpu null", with_text("gpu.id", "null"), "fast"),
    ("gpu empty", with_text("gpu.id", '""'), "slow"),
    ("gpu absent", without("gpu.id"), "fast"),
    ("error type set", with_text("error.type", '"timeout"'), "fast"),
    ("operation as a list", with_text("gen_ai.operation.name", '["chat"]'), "slow"),
    # finish reasons
    ("finish reasons a string", with_text("gen_ai.response.finish_reasons", '"stop"'), "slow"),
    ("finish reasons numbers", with_text("gen_ai.response.finish_reasons", "[1]"), "slow"),
    ("finish reasons empty", with_text("gen_ai.response.finish_reasons", "[]"), "fast"),
    ("finish reasons with null", with_text("gen_ai.response.finish_reasons", '["a", null]'), "slow"),
    ("finish reasons nested", with_text("gen_ai.response.finish_reasons", '[["a"]]'), "slow"),
    ("finish reasons null", with_text("gen_ai.response.finish_reasons", "null"), "fast"),
    ("finish reasons empty strings", with_text("gen_ai.response.finish_reasons", '["", "x"]'), "fast"),
    # not one event
    ("a list", b"[1, 2]", "slow"),
    ("a number", b"1", "slow"),
    ("null", b"null", "slow"),
    ("empty", b"", "slow"),
    ("whitespace", b" \n", "slow"),
    ("truncated", GOOD_TEXT.encode()[:-1], "slow"),
    ("trailing bytes", GOOD_TEXT.encode() + b" x", "slow"),
    ("surrounding whitespace", b" \t\r\n" + GOOD_TEXT.encode() + b"\n ", "fast"),
    ("form feed", b"\x0c" + GOOD_TEXT.encode(), "slow"),
    # envelopes
    ("envelope", envelope(GOOD_TEXT.encode(), with_text("request.id", '"r-2"')), "fast"),
    ("envelope, type last", b'{"version": 1, "events": [' + GOOD_TEXT.encode() + b'], "type": "batch"}', "fast"),
    ("envelope, pretty-printed", json.dumps(json.loads(envelope(GOOD_TEXT.encode())), indent=4).encode(), "fast"),
    ("envelope, no events", envelope(), "fast"),
    ("envelope, version 2", envelope(GOOD_TEXT.encode(), head=b'"type": "batch", "version": 2'), "slow"),
    ('envelope, version "1"', envelope(GOOD_TEXT.encode(), head=b'"type": "batch", "version": "1"'), "slow"),
    ("envelope, version true", envelope(GOOD_TEXT.encode(), head=b'"type": "batch", "version": true'), "slow"),
    ("envelope, version 1.0", envelope(GOOD_TEXT.encode(), head=b'"type": "batch", "version": 1.0'), "slow"),
    ("envelope, no version", envelope(GOOD_TEXT.encode(), head=b'"type": "batch"'), "slow"),
    ("envelope, events an object", b'{"type": "batch", "version": 1, "events": {}}', "slow"),
    ("envelope, events null", b'{"type": "batch", "version": 1, "events": null}', "slow"),
    ("envelope, events missing", b'{"type": "batch", "version": 1}', "slow"),
    ("envelope, events twice", b'{"type": "batch", "version": 1, "events": [1, {}], "events": ['
     + GOOD_TEXT.encode() + b"]}", "fast"),
    ("envelope, good and bad", envelope(GOOD_TEXT.encode(), with_text("gen_ai.server.request.duration", "-1"),
                                        tokens("5.0"), GOOD_TEXT.encode()), "slow"),
    ("envelope, all bad", envelope(with_text("host.name", "5"), b"[]", b"null", b"7"), "slow"),
    ("envelope in an envelope", envelope(envelope(GOOD_TEXT.encode())), "slow"),
    ("envelope, an event without type", envelope(without("type")), "slow"),
    ("envelope, NaN in one event", envelope(GOOD_TEXT.encode(), with_text("x", "NaN")), "slow"),
    ("envelope, one event too deep", envelope(GOOD_TEXT.encode(), with_text("x", deep(MAX_DEPTH + 1))), "slow"),
    ("envelope, one event 300 deep", envelope(GOOD_TEXT.encode(), with_text("x", deep(300))), "slow"),
    ("envelope, one event 3000 deep", envelope(GOOD_TEXT.encode(), with_text("x", deep(3000))), "slow"),
    ("envelope, many events nesting a little", envelope(*[with_text("attrs", '{"a": {"b": []}}')] * 70), "fast"),
    ("envelope, its own field too deep", envelope(GOOD_TEXT.encode(), head=b'"type": "batch", "version": 1, "x": '
                                                  + deep(MAX_DEPTH + 1).encode()), "slow"),
    ("envelope, its own field nesting a little",
     envelope(*[with_text("attrs", '{"a": {}}')] * 70, head=b'"type": "batch", "version": 1, "x": [[[]]]'), "fast"),
    ("envelope, a 5000-digit integer in an event", envelope(GOOD_TEXT.encode(), with_text("x", "7" * 5000)), "slow"),
    ("envelope, a 5000-digit integer outside events",
     envelope(GOOD_TEXT.encode(), head=b'"type": "batch", "version": 1, "x": ' + b"7" * 5000), "slow"),
    ("envelope, long events with short numbers", envelope(*[with_text("x", text("y" * 5000))] * 3), "fast"),
    ("envelope, not UTF-8 in one event", envelope(GOOD_TEXT.encode(), unknown_string(b"\xff")), "slow"),
    ("envelope, lone surrogate in one event", envelope(GOOD_TEXT.encode(), with_text("x", '"\\ud800"')), "slow"),
    ("envelope, lone surrogate outside events",
     envelope(GOOD_TEXT.encode(), head=b'"type": "batch", "version": 1, "x": "\\ud800"'), "slow"),
    ("envelope, truncated", envelope(GOOD_TEXT.encode())[:-2], "slow"),
]


@pytest.mark.parametrize("raw, path", [pytest.param(raw, path, id=name) for name, raw, path in TRAPS])
def test_each_trap_alone_gets_the_validators_verdict(raw, path):
    batch = assert_equivalent([raw])
    assert batch.slow == ([] if path == "fast" else [0])


@pytest.mark.parametrize("raw", [pytest.param(raw, id=name) for name, raw, _ in TRAPS])
def test_each_trap_inside_an_envelope_gets_the_validators_verdict(raw):
    assert_equivalent([envelope(GOOD_TEXT.encode(), raw, GOOD_TEXT.encode())])


def test_all_traps_in_one_batch_get_the_validators_verdicts():
    batch = assert_equivalent([raw for _, raw, _ in TRAPS])
    assert batch.slow == [i for i, (_, _, path) in enumerate(TRAPS) if path == "slow"]


def test_integral_floats_are_accepted_and_stored_as_ints():
    event = validate_event(good_request(**{"gen_ai.usage.input_tokens": 5.0, "version": 1.0}), "request")
    assert type(event["gen_ai.usage.input_tokens"]) is int and event["gen_ai.usage.input_tokens"] == 5
    assert type(event["version"]) is int
    batch = decode_requests([tokens("5.0"), with_text("version", "1.0")], MAX_BYTES)
    assert batch.slow == [0, 1] and batch.per_message == [1, 1]
    assert batch.events[0].input_tokens == 5 and type(batch.events[0].input_tokens) is int
    assert batch.events[1].version == 1 and type(batch.events[1].version) is int


def test_a_refused_event_keeps_its_integral_floats_in_its_dead_letter():
    refused = good_request(**{"version": 1.0, "gen_ai.usage.input_tokens": 5.0, "gen_ai.server.request.duration": -1})
    with pytest.raises(ValidationError):
        validate_event(refused, "request")
    assert type(refused["version"]) is float and type(refused["gen_ai.usage.input_tokens"]) is float
    batch = assert_equivalent([envelope(GOOD_TEXT.encode(), json.dumps(refused).encode())])
    assert json.loads(batch.dead[0][1].raw) == refused and b'"gen_ai.usage.input_tokens":5.0' in batch.dead[0][1].raw


def test_messages_over_the_size_limit_are_refused_unread():
    raws = [GOOD_TEXT.encode(), with_text("pad", text("x" * 600)), envelope(GOOD_TEXT.encode(), GOOD_TEXT.encode())]
    batch = assert_equivalent(raws, max_bytes=700)
    assert batch.slow == [1, 2] and batch.per_message == [1, 0, 0]
    assert all("over the 700-byte limit" in letter.reason for _, letter in batch.dead)


def test_positions_of_events_letters_and_slow_messages():
    bad = with_text("gen_ai.server.request.duration", "-1")
    mixed = envelope(GOOD_TEXT.encode(), bad, with_text("request.id", '"r-3"'))
    batch = assert_equivalent([GOOD_TEXT.encode(), bad, mixed, envelope(GOOD_TEXT.encode()), b"{", GOOD_TEXT.encode()])
    assert batch.per_message == [1, 0, 2, 1, 0, 1]
    assert [i for i, _ in batch.dead] == [1, 2, 4] and batch.slow == [1, 2, 4]
    assert batch.dead[1][1].reason.startswith("events[1].gen_ai.server.request.duration: must be >= 0")
    assert [e.request_id for e in batch.events] == ["r-1", "r-1", "r-3", "r-1", "r-1"]


def test_the_struct_is_the_request_schema():
    assert [f.encode_name for f in FIELDS] == [f.name for f in REQUEST]
    assert {f.encode_name for f in FIELDS if f.required} == {f.name for f in REQUEST if f.required}
    assert [f.name for f in FIELDS] == [
        "type", "version", "timestamp", "request_id", "trace_id", "model", "node", "gpu", "operation", "duration",
        "ttft", "tpot", "queue_time", "input_tokens", "output_tokens", "finish_reasons", "error_type", "refusal",
        "empty", "repetition", "format_ok", "cache_read_tokens", "tenant"]


def simulated(count: int) -> list[dict]:
    config = SimulationConfig(count=count, seed=7, nodes=8, models=3, rate=50_000.0, start=time.time() - 3600,
                              pace="fast")
    return [e for chunk in generate(config) for e in chunk]


def test_ordinary_events_take_the_fast_path():
    events = simulated(2000)
    singles = [orjson.dumps(e) for e in events]
    envelopes = [encode_batch(events[i:i + 500]) for i in range(0, len(events), 500)]
    for values in (singles, envelopes, singles[:10] + envelopes[:1]):
        batch = assert_equivalent(values)
        assert batch.slow == [] and batch.dead == []
    assert decode_requests(singles, MAX_BYTES).events == [as_event(e) for e in events]


#: Pieces of JSON, joined at random: mostly not JSON, sometimes JSON the parsers read differently.
soup = st.lists(st.sampled_from([
    b"{", b"}", b"[", b"]", b'"', b":", b",", b" ", b"NaN", b"-Infinity", b"1e999", b"-0", b"01", b"1.", b".5",
    b"18446744073709551616", b"5.0", b"\\ud800", b"\\u00e9", b"\\", b"\xff", b"\xc3\xa9", b"\x00", b"null",
    b"true", b'"a"', b'"type"', b'"batch"', b'"events"', b'"version"', b"1", b'"request"', b'"host.name"',
]), max_size=25).map(b"".join)
messages = st.one_of(
    event_bytes(),
    st.lists(event_bytes(), max_size=5).map(lambda parts: envelope(*parts)),
    soup.map(lambda value: GOOD_TEXT[:-1].encode() + b', "x": ' + value + b"}"),  # what msgspec skips
    soup.map(lambda value: envelope(GOOD_TEXT.encode(), value)),
    soup,
    st.binary(max_size=60),
    st.sampled_from([GOOD_TEXT.encode(), envelope(GOOD_TEXT.encode())]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(messages, max_size=8), st.sampled_from([300, 2000, MAX_BYTES]))
def test_mixed_batches_agree_with_the_validator(values, max_bytes):
    assert_equivalent(values, max_bytes)


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=0, max_value=3600), st.integers(min_value=1, max_value=17))
def test_numbers_read_to_the_same_float(duration, digits):
    written = f"{duration:.{digits}g}"  # rounding may carry it past 3600
    batch = assert_equivalent([with_text("gen_ai.server.request.duration", written)])
    if float(written) <= 3600:
        assert batch.slow == [] and batch.events[0].duration == float(written)


def test_the_bad_input_corpus_agrees_with_the_validator():
    assert_equivalent([raw for raw, _ in bad_inputs()], BAD_INPUT_MAX_BYTES)


def test_the_fuzz_corpus_agrees_with_the_validator():
    """The messages tests/integration/test_fuzz.py sends through the broker, the same seed and count."""
    fuzzer = Fuzzer(SEED)
    values = [fuzzer.message()[0] for _ in range(MESSAGES)]
    slow = 0
    for start in range(0, len(values), 500):
        slow += len(assert_equivalent(values[start:start + 500]).slow)
    assert 0 < slow < len(values)  # both paths decide plenty of them
