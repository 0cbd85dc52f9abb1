"""Property tests of the decoder (hypothesis): no input makes it raise, every
message ends as events and dead letters that add up, and each event of an
envelope gets the verdict it would get alone, whatever its neighbours hold."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetpulse.schemas import decode_message
from tests.events import good_request

MAX_BYTES = 1 << 20
FIELDS = list(good_request())

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["\ud800", "a\udfffb", "é", "\u0000"]),  # lone surrogates, and odd but valid text
)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


@st.composite
def event_bytes(draw) -> bytes:
    """One request event, good or mutated, as JSON text the way hostile senders write it."""
    event = good_request(**{"request.id": draw(st.text(min_size=1, max_size=10))})
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=3)):
        if draw(st.booleans()):
            event.pop(field, None)
        else:
            event[field] = draw(json_values)
    if draw(st.booleans()):
        event[draw(st.text(max_size=10))] = draw(json_values)  # an unknown field
    text = json.dumps(event)
    kind = draw(st.sampled_from(["plain", "plain", "deep", "deeper", "bigint", "bytes"]))
    if kind == "deep":  # past orjson's depth limit, within the stdlib's
        text = text[:-1] + f', "extra": {deep(300)}' + "}"
    elif kind == "deeper":  # past every parser's limit
        text = text[:-1] + f', "extra": {deep(5000)}' + "}"
    elif kind == "bigint":
        text = text[:-1] + ', "extra": 18446744073709551616}'
    raw = text.encode()
    if kind == "bytes":  # a byte that is not UTF-8, inside a string
        raw = raw.replace(b'"r', b'"\xff', 1) if b'"r' in raw else raw[:-1] + b', "x": "\xff"}'
    return raw


def verdict(raw: bytes) -> bool:
    """Valid or not, decoded alone."""
    decoded = decode_message(raw, "request", MAX_BYTES)
    assert len(decoded.events) + len(decoded.dead) == 1
    return bool(decoded.events)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_any_bytes_decode_without_raising_into_exactly_one_outcome(raw):
    decoded = decode_message(raw, "request", MAX_BYTES)
    assert len(decoded.events) + len(decoded.dead) == 1
    assert all(letter.reason and letter.raw == raw for letter in decoded.dead)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event_bytes(), min_size=1, max_size=6))
def test_each_event_of_an_envelope_gets_its_own_verdict(parts):
    raw = b'{"type": "batch", "version": 1, "events": [' + b", ".join(parts) + b"]}"
    decoded = decode_message(raw, "request", MAX_BYTES)
    assert len(decoded.events) + len(decoded.dead) == len(parts), [d.reason for d in decoded.dead]
    dead_at = {int(d.reason[len("events["):d.reason.index("]")]) for d in decoded.dead}
    assert all(d.reason.startswith("events[") for d in decoded.dead)
    assert dead_at | set(decoded.index) == set(range(len(parts))) and not dead_at & set(decoded.index)
    for i, part in enumerate(parts):
        assert verdict(part) == (i in decoded.index), (i, part[:200])
    for k in range(len(decoded.events)):  # a later refusal (too old) can always build its letter
        assert decoded.letter(k, "timestamp: too old").reason.startswith(f"events[{decoded.index[k]}].")


@pytest.mark.parametrize("raw, why", [
    ('{"type":"request"}'.encode("utf-16"), "not UTF-8"),
    ('{"type":"request"}'.encode("utf-32"), "not UTF-8"),
    (b"\xef\xbb\xbf" + json.dumps(good_request()).encode(), "not valid JSON"),
    (json.dumps(good_request()).encode()[:-1] + f', "x": {deep(5000)}}}'.encode(), "not valid JSON"),
])
def test_documented_whole_message_refusals(raw, why):
    decoded = decode_message(raw, "request", MAX_BYTES)
    assert not decoded.events and len(decoded.dead) == 1 and why in decoded.dead[0].reason


def test_the_three_reproductions_from_the_fuzz_run():
    good = json.dumps(good_request())
    big = good[:-1] + ', "extra": 18446744073709551616}'
    nan = json.dumps(good_request(**{"gen_ai.server.request.duration": float("nan")}))
    decoded = decode_message(f'{{"type":"batch","version":1,"events":[{good},{big},{nan}]}}'.encode(), "request",
                             MAX_BYTES)
    assert len(decoded.events) == 2 and [d.reason[:40] for d in decoded.dead] == [
        "events[2].gen_ai.server.request.duration"]
    deep_field = good[:-1] + f', "extra": {{"a": {deep(300)}}}}}'
    decoded = decode_message(deep_field.encode(), "request", MAX_BYTES)
    assert len(decoded.events) == 1
    letter = decoded.letter(0, "timestamp: too old")  # orjson cannot write 300 levels back: the bytes stay
    assert letter.reason == "timestamp: too old" and letter.raw == deep_field.encode()
    surrogate = json.dumps(good_request(**{"host.name": "\ud800"}))
    decoded = decode_message(f'{{"type":"batch","version":1,"events":[{good},{surrogate}]}}'.encode(), "request",
                             MAX_BYTES)
    assert len(decoded.events) == 1 and decoded.dead[0].reason.startswith("events[1].<event>: a string holds a lone")
