"""The Rust scanner (schemas.scan) on its own: what it reads, exactly, and
what it leaves. test_columnar holds the whole columnar path to the validator;
these pin the scanner's own reading of numbers, strings and envelopes, bit
for bit, where the validator's equality (-0.0 == 0.0) would not see a
difference."""

from __future__ import annotations

import json
import random
import struct

import numpy as np
import pytest

from fleetpulse.schemas.scan import ENVELOPE, SINGLE, UNUSUAL, scan

GOOD = {"type": "request", "version": 1, "timestamp": 1796144400.25, "request.id": "r-1",
        "trace_id": "0af7651916cd43dd8448eb211c80319c", "gen_ai.request.model": "llama-3-8b", "host.name": "node-01",
        "gen_ai.server.request.duration": 0.84, "gen_ai.usage.input_tokens": 512, "gen_ai.usage.output_tokens": 128,
        "gen_ai.response.finish_reasons": ["stop"]}


def scanned(values: list[bytes]):
    sizes = np.array([len(v) for v in values], dtype=np.int64)
    text = b"\n".join(values)
    starts = np.cumsum(sizes + 1) - sizes - 1
    result = scan(text, starts, sizes, np.ones(len(values), dtype=bool))
    assert result is not None
    return result


def with_raw(name: str, literal: str, event: dict = GOOD) -> bytes:
    head = json.dumps({k: v for k, v in event.items() if k != name}, separators=(",", ":"))[:-1]
    return f'{head},"{name}":{literal}}}'.encode()


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def _literals(rng: random.Random) -> list[str]:
    out = ["0", "-0", "0.0", "-0.0", "0e0", "-0e-5", "1e22", "1e23", "1e-22", "1e-23", "1E+5", "2.5e-3",
           "9007199254740992", "9007199254740993", "9007199254740993.0", "900719925474099.3", "123456789012345678",
           "-123456789012345678", "0.1", "0.30000000000000004", "1796144400.7873938", "1e308", "4.9e-324",
           "2.2250738585072014e-308", "1e-400", "1e400", "0.000000000000000000000000000001"]
    for _ in range(3000):
        whole = str(rng.randrange(0, 10 ** rng.randrange(1, 19)))
        literal = ("-" if rng.random() < 0.3 else "") + whole
        if rng.random() < 0.7:
            literal += "." + "".join(rng.choice("0123456789") for _ in range(rng.randrange(1, 20)))
        if rng.random() < 0.4:
            literal += rng.choice("eE") + rng.choice(["", "+", "-"]) + str(rng.randrange(0, 40))
        out.append(literal)
    return out


def test_numbers_are_read_as_python_reads_them_bit_for_bit():
    literals = _literals(random.Random(13))
    result = scanned([with_raw("gen_ai.server.request.duration", lit) for lit in literals])
    assert (result.kinds == SINGLE).all()
    got = result.events.field("gen_ai.server.request.duration").to_pylist()
    for literal, value in zip(literals, got):
        assert bits(value) == bits(float(json.loads(literal))), literal


@pytest.mark.parametrize("literal", ["1234567890123456789", "-1234567890123456789", "01", "1.", ".5", "-", "+1", "1e",
                                     "1e+", "NaN", "Infinity", "-Infinity", "true", '"1"', "[1]"])
def test_numbers_outside_the_subset_are_left(literal):
    result = scanned([with_raw("gen_ai.server.request.duration", literal), json.dumps(GOOD).encode()])
    assert result.kinds.tolist() == [UNUSUAL, SINGLE] and len(result.events) == 1


@pytest.mark.parametrize("literal", ["5.0", "5e0", "1e2", "19000000000000000000"])
def test_an_integer_field_takes_integer_literals_of_18_digits_at_most(literal):
    result = scanned([with_raw("gen_ai.usage.input_tokens", literal), with_raw("gen_ai.usage.input_tokens", "-0")])
    assert result.kinds.tolist() == [UNUSUAL, SINGLE]
    assert result.events.field("gen_ai.usage.input_tokens").to_pylist() == [0]


@pytest.mark.parametrize("bad", ['\\"', "\\\\", "\\n", "\x01", "\x1f", "\t"])
def test_an_escape_or_control_byte_at_any_offset_leaves_the_message(bad):
    """The scanner reads strings eight bytes at a time: the byte is caught
    wherever it falls in a word, and at the message's very end too."""
    for offset in range(17):
        value = "x" * offset + bad + "y" * (offset % 3)
        raw = with_raw("host.name", '"' + value + '"')
        result = scanned([raw, json.dumps(GOOD).encode()])
        assert result.kinds.tolist() == [UNUSUAL, SINGLE], (offset, bad)
        assert result.events.field("host.name").to_pylist() == ["node-01"]


def test_strings_of_every_length_and_utf8_are_read_whole():
    names = ["", "é", "x" * 7, "x" * 8, "x" * 9, "nœud-€-😀" * 5, "\x7f" + "a" * 15, "日本語" * 30]
    result = scanned([with_raw("host.name", json.dumps(name, ensure_ascii=False)) for name in names])
    assert (result.kinds == SINGLE).all()
    assert result.events.field("host.name").to_pylist() == names


def test_a_list_read_in_part_leaves_nothing_behind():
    bad = with_raw("gen_ai.response.finish_reasons", '["length", null]')
    good = with_raw("gen_ai.response.finish_reasons", '["stop","length"]')
    envelope = b'{"type":"batch","version":1,"events":[' + good + b"," + bad + b"]}"
    result = scanned([bad, good, envelope, good])
    assert result.kinds.tolist() == [UNUSUAL, SINGLE, UNUSUAL, SINGLE]
    assert result.events.field("gen_ai.response.finish_reasons").to_pylist() == [["stop", "length"]] * 2


def test_an_envelope_header_may_follow_its_events_but_nothing_else_may_stand_beside_them():
    event = json.dumps(GOOD).encode()
    values = [b'{"events":[' + event + b"," + event + b'],"version":1,"type":"batch"}',
              b'{"version":1,"events":[' + event + b'],"type":"batch"}',
              b'{ "type" : "batch" ,\t"version":1,\r\n"events" : [ ' + event + b" ] }",
              b'{"type":"batch","version":1,"events":[]}',
              b'{"type":"batch","version":1,"events":[' + event + b'],"x":1}',
              b'{"type":"batch","events":[' + event + b"]}",
              b'{"type":"batch","version":2,"events":[' + event + b"]}",
              b'{"type":"batch","version":1,"events":[' + event + b'],"version":1}',
              b'{"type":"request","version":1,"events":[' + event + b"]}",
              b'{"type":"batch","version":1,"events":[null]}',
              b'{"type":"batch","version":1,"events":[{"type":"batch","version":1,"events":[]}]}']
    result = scanned(values)
    assert result.kinds.tolist() == [ENVELOPE] * 4 + [UNUSUAL] * 7
    assert result.counts.tolist()[:4] == [2, 1, 1, 0] and len(result.events) == 4
    assert result.events.field("request.id").to_pylist() == ["r-1"] * 4


def test_absent_and_null_fields_read_as_null_and_keys_come_in_any_order():
    event = dict(reversed(list(GOOD.items())), **{"gpu.id": None})
    result = scanned([json.dumps(event).encode(), json.dumps(GOOD).encode()])
    assert (result.kinds == SINGLE).all()
    rows = result.events.to_pylist()
    assert rows[0] == rows[1] == {**{name: None for name in result.events.type.names}, **GOOD}


@pytest.mark.parametrize("raw", [b'{"type":"request"} x', b'{"type":"request"}{}', b'{"a":1}', b'{"type":"request",}',
                                 b'{"type":"request" "version":1}', b'{"type":"request","type":"request"}', b"{", b"{}}"])
def test_what_is_not_one_object_of_schema_fields_is_left(raw):
    assert scanned([raw]).kinds.tolist() == [UNUSUAL]


def test_messages_it_is_told_to_skip_and_spans_past_the_text_are_left():
    good = json.dumps(GOOD).encode()
    text = good + b"\n" + good
    big = np.iinfo(np.int64).max - 1
    result = scan(text, np.array([0, len(good) + 1, len(text) - 3, big, -1]),
                  np.array([len(good), len(good), 10, 10, 5]), np.array([False, True, True, True, True]))
    assert result.kinds.tolist() == [UNUSUAL, SINGLE, UNUSUAL, UNUSUAL, UNUSUAL] and len(result.events) == 1
