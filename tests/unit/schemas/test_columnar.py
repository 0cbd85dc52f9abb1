"""The columnar path (schemas.columnar.decode_columns, then the msgspec path
for what it leaves, as streams.windows.batch runs them) against the
validator (schemas.validate.decode_message): for every message, the same valid
events with the same values and the same dead letters. The traps, the
properties and the corpora are test_fast's own; the columnar path must also
be the one taken for ordinary input, and its columns must equal the msgspec
path's."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetpulse.schemas import decode_message, encode_batch
from fleetpulse.schemas.columnar import decode_columns
from fleetpulse.schemas.fast import decode_requests
from fleetpulse.streams.windows.columns import Coded, from_arrow, to_columns
from tests.integration.test_bad_input import MAX_BYTES as BAD_INPUT_MAX_BYTES
from tests.integration.test_bad_input import bad_inputs
from tests.integration.test_fuzz import MESSAGES, SEED, Fuzzer
from tests.unit.schemas.test_fast import (GOOD, GOOD_TEXT, MAX_BYTES, TRAPS, as_event, assert_typed, envelope,
                                          messages, simulated, tokens, with_text, without)
from tests.unit.schemas.test_validate_properties import event_bytes


@dataclasses.dataclass
class WorkerDecode:
    events: list  # RequestEvent-shaped, for comparing with the validator
    per_message: list[int]
    dead: list
    columnar: bool  # whether the scanner read the batch (else the msgspec path decided all of it)
    unusual: int  # messages the columnar path left to the msgspec path


def worker_decode(values: list[bytes], max_bytes: int = MAX_BYTES) -> WorkerDecode:
    """What process_batch decodes: the columnar path, or the msgspec path when it returns None."""
    decoded = decode_columns(values, max_bytes)
    if decoded is None:
        batch = decode_requests(values, max_bytes)
        return WorkerDecode(batch.events, list(batch.per_message), batch.dead, False, len(values))
    events = [as_event(e) for e in decoded.events.to_pylist()]
    return WorkerDecode(events, decoded.per_message.tolist(), decoded.dead, True, decoded.unusual)


def assert_equivalent(values: list[bytes], max_bytes: int = MAX_BYTES) -> WorkerDecode:
    got = worker_decode(values, max_bytes)
    assert len(got.per_message) == len(values) and sum(got.per_message) == len(got.events)
    assert [i for i, _ in got.dead] == sorted(i for i, _ in got.dead)
    start = 0
    for i, raw in enumerate(values):
        decoded = decode_message(raw, "request", max_bytes)
        mine = got.events[start:start + got.per_message[i]]
        start += got.per_message[i]
        assert mine == [as_event(e) for e in decoded.events], (i, raw[:300])
        assert [letter for j, letter in got.dead if j == i] == decoded.dead, (i, raw[:300])
        for event in mine:
            assert_typed(event)
    return got


@pytest.mark.parametrize("raw", [pytest.param(raw, id=name) for name, raw, _ in TRAPS])
def test_each_trap_among_good_messages_gets_the_validators_verdict(raw):
    got = assert_equivalent([GOOD_TEXT.encode(), raw, envelope(GOOD_TEXT.encode(), GOOD_TEXT.encode())])
    assert got.columnar and got.unusual <= 1  # a trap never sends its neighbours the slow way


@pytest.mark.parametrize("raw", [pytest.param(raw, id=name) for name, raw, _ in TRAPS])
def test_each_trap_inside_an_envelope_gets_the_validators_verdict(raw):
    assert_equivalent([envelope(GOOD_TEXT.encode(), raw, GOOD_TEXT.encode()), GOOD_TEXT.encode()])


def test_all_traps_in_one_batch_get_the_validators_verdicts():
    assert_equivalent([raw for _, raw, _ in TRAPS])


#: Messages the columnar path vouches for none of: the scanner reads them and
#: the column checks refuse them, or the scanner leaves them. Each goes the
#: per-message way alone, and the batch stays columnar.
SCHEMA_ONLY = [
    tokens("10000001"), with_text("gen_ai.server.request.duration", "-1"),
    with_text("gen_ai.server.request.duration", "NaN"), with_text("gen_ai.server.request.duration", "Infinity"),
    with_text("request.id", '""'), with_text("request.id", json.dumps("x" * 129)),
    with_text("request.id", json.dumps("😀" * 129)), with_text("type", '"gpu"'), with_text("version", "2"),
    without("trace_id"), with_text("host.name", "null"), with_text("gpu.id", '""'),
    with_text("gen_ai.response.finish_reasons", '["a", null]'), with_text("timestamp", "1764000000250"),
    envelope(GOOD_TEXT.encode(), with_text("gen_ai.server.request.duration", "-1")),
    envelope(GOOD_TEXT.encode(), head=b'"type": "batch", "version": 2'),
    b'{"type": "batch", "version": 1, "events": [null]}',
    b'{"type": "batch", "version": 1}', b'{"type": "batch", "version": 1, "events": null}', b"{}",
    b" " + GOOD_TEXT.encode(), b"\xef\xbb\xbf" + GOOD_TEXT.encode(), b"", b"[1]",
]


@pytest.mark.parametrize("raw", SCHEMA_ONLY)
def test_a_bad_message_among_good_ones_goes_the_per_message_way_alone(raw):
    good = [GOOD_TEXT.encode(), envelope(GOOD_TEXT.encode(), with_text("request.id", '"r-2"'))]
    got = assert_equivalent([good[0], raw, good[1]])
    assert got.columnar and got.unusual == 1 and got.per_message[0] == 1 and got.per_message[2] == 2


def test_a_message_that_is_not_utf8_goes_the_per_message_way_alone():
    """Non-ASCII text that is UTF-8 stays on the columnar path; one message
    that is not UTF-8 goes the per-message way alone, whatever its neighbours."""
    accented = with_text("host.name", '"nœud-é"')
    broken = GOOD_TEXT.replace('"node-01"', '"node-\udcff"').encode("utf-8", "surrogateescape")
    got = assert_equivalent([accented, GOOD_TEXT.encode(), accented])
    assert got.columnar and got.unusual == 0
    got = assert_equivalent([accented, broken, GOOD_TEXT.encode(), accented])
    assert got.columnar and got.unusual == 1 and list(got.per_message) == [1, 0, 1, 1]


def test_ordinary_events_take_the_columnar_path_with_the_same_columns():
    events = simulated(2000)
    for event in events[::7]:  # the optional fields too: quality, cache, tenants
        event.update({"fleetpulse.output.refusal": 0, "fleetpulse.output.empty": 1, "fleetpulse.output.repetition": 0.25,
                      "fleetpulse.output.format_ok": 1, "gen_ai.usage.cache_read.input_tokens": 64,
                      "fleetpulse.tenant": "t-1", "gen_ai.response.finish_reasons": ["content_filter", "stop"]})
    events[3]["gen_ai.response.finish_reasons"] = []
    singles = [orjson.dumps(e) for e in events]
    envelopes = [encode_batch(events[i:i + 500]) for i in range(0, len(events), 500)]
    for values in (singles, envelopes, singles[:10] + envelopes[:1] + singles[10:20]):
        decoded = decode_columns(values, MAX_BYTES)
        assert decoded is not None and decoded.unusual == 0 and decoded.dead == [] and decoded.slow == []
        assert_same_columns(from_arrow(decoded.events), to_columns(decode_requests(values, MAX_BYTES).events))
    assert [as_event(e) for e in decode_columns(singles, MAX_BYTES).events.to_pylist()] == \
        [as_event(e) for e in events]


def assert_same_columns(a, b) -> None:
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, Coded):
            assert x.values == y.values and np.array_equal(x.codes, y.codes), f.name
        elif isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True), f.name
        else:
            assert list(x) == list(y), f.name


@pytest.mark.parametrize("raw", [
    with_text("x-extra", '"v"'), with_text("gen_ai.usage.input_tokens", "5.0"), with_text("request.id", '"r\\u002d1"'),
    GOOD_TEXT.encode()[:-1] + b', "host.name": "n2"}', envelope(GOOD_TEXT.encode(), GOOD_TEXT.encode())[:-1] + b', "x": 1}',
    envelope(envelope(GOOD_TEXT.encode())), with_text("timestamp", "1796144400250000000000"),
    with_text("gen_ai.usage.input_tokens", "5e0"), with_text("gen_ai.usage.input_tokens", "true"),
    with_text("gen_ai.usage.input_tokens", "012"), with_text("timestamp", "1796144400."),
    GOOD_TEXT.encode().replace(b'"host.name"', b'"host\\u002ename"'), with_text("host.name", '"a\\tb"'),
    envelope(GOOD_TEXT.encode(), head=b'"type": "batch", "version": 1.0'), b'{"type": "batch", "version": 1, "events": {}}',
])
def test_what_the_scanner_leaves_goes_the_per_message_way_alone(raw):
    """An unknown field, 5.0 for an integer, an escape, a duplicate key,
    anything beside an envelope's events, an envelope in an envelope, an
    integer of more than 18 digits for a number: the validator decides."""
    got = assert_equivalent([GOOD_TEXT.encode(), raw, GOOD_TEXT.encode()])
    assert got.columnar and got.unusual == 1 and got.per_message[0] == got.per_message[2] == 1


@pytest.mark.parametrize("values", [
    [GOOD_TEXT.encode()[:-1] + b',\n"x": 1}'],  # a line break inside a message
    [GOOD_TEXT.encode() + GOOD_TEXT.encode(), b""],  # two objects in one message, none in the next
    [GOOD_TEXT.encode() + b"\n" + GOOD_TEXT.encode(), b" "],
    [GOOD_TEXT.encode() + b"\r" + GOOD_TEXT.encode(), b"{}"],
])
def test_messages_that_are_not_one_line_one_object_never_shift_the_rows(values):
    got = assert_equivalent(values + [GOOD_TEXT.encode()])
    assert got.per_message[-1] == 1


def test_messages_over_the_size_limit_are_refused_unread():
    raws = [GOOD_TEXT.encode(), with_text("request.id", json.dumps("x" * 100)), GOOD_TEXT.encode()]
    got = assert_equivalent(raws, max_bytes=len(GOOD_TEXT) + 5)
    assert got.per_message == [1, 0, 1] and "byte limit" in got.dead[0][1].reason


def test_a_null_event_in_an_envelope_is_the_validators():
    got = assert_equivalent([b'{"type": "batch", "version": 1, "events": [null, ' + GOOD_TEXT.encode() + b"]}"])
    assert got.per_message == [1] and got.dead[0][1].reason.startswith("events[0]")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(messages, max_size=8), st.sampled_from([300, 2000, MAX_BYTES]))
def test_mixed_batches_agree_with_the_validator(values, max_bytes):
    assert_equivalent(values, max_bytes)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(event_bytes(), st.lists(event_bytes(), max_size=4).map(lambda p: envelope(*p))),
                min_size=1, max_size=8))
def test_schema_only_batches_agree_with_the_validator(values):
    """Events of schema fields only, valid or not: Arrow reads most of these
    batches, so the column checks decide."""
    assert_equivalent([GOOD_TEXT.encode(), *values])


def test_the_bad_input_corpus_agrees_with_the_validator():
    assert_equivalent([raw for raw, _ in bad_inputs()], BAD_INPUT_MAX_BYTES)


def test_the_fuzz_corpus_agrees_with_the_validator():
    fuzzer = Fuzzer(SEED)
    values = [fuzzer.message()[0] for _ in range(MESSAGES)]
    columnar = 0
    for start in range(0, len(values), 5):
        columnar += assert_equivalent(values[start:start + 5]).columnar
    assert columnar > 0  # Arrow reads some batches, and the column checks decide them


def test_the_good_event_is_read_with_its_values():
    decoded = decode_columns([GOOD_TEXT.encode()], MAX_BYTES)
    assert decoded.events.to_pylist()[0] | {} == {**{k: None for k in decoded.events.type.names}, **GOOD}
