"""Decode and validate a whole batch of request messages in C (msgspec).

``decode_requests`` is the worker's hot path. msgspec parses each message
straight into a :class:`RequestEvent`, checking every type and limit of
``schemas.v1.REQUEST`` as it goes; for a batch of valid single-event messages
Python runs per batch, not per message, and for envelopes per envelope, not
per event. A message the fast path refuses, for whatever reason, goes to
``schemas.validate.decode_message`` unchanged, so every verdict, reason and
dead letter is the validator's own. The fast path may therefore only accept a
message the validator accepts whole, with the same values; docs/schemas.md
("The fast path") lists where msgspec and the validator read JSON differently
and how each difference is closed here.
"""

from __future__ import annotations

import dataclasses
import itertools
import operator
import sys
from typing import Annotated, Callable, Literal, Optional, Sequence

import msgspec
import numpy as np

from fleetpulse.schemas.fields import Field
from fleetpulse.schemas.v1 import REQUEST
from fleetpulse.schemas.validate import BATCH, DeadLetter, safe_decode

#: Attribute name of each wire field of ``schemas.v1.REQUEST``; their types and
#: limits come from the field specs.
ATTRIBUTES = {
    "type": "type", "version": "version", "timestamp": "timestamp", "request.id": "request_id",
    "trace_id": "trace_id", "gen_ai.request.model": "model", "host.name": "node", "gpu.id": "gpu",
    "gen_ai.operation.name": "operation", "gen_ai.server.request.duration": "duration",
    "gen_ai.server.time_to_first_token": "ttft", "gen_ai.server.time_per_output_token": "tpot",
    "fleetpulse.queue_time": "queue_time", "gen_ai.usage.input_tokens": "input_tokens",
    "gen_ai.usage.output_tokens": "output_tokens", "gen_ai.response.finish_reasons": "finish_reasons",
    "error.type": "error_type", "fleetpulse.output.refusal": "refusal", "fleetpulse.output.empty": "empty",
    "fleetpulse.output.repetition": "repetition", "fleetpulse.output.format_ok": "format_ok",
    "gen_ai.usage.cache_read.input_tokens": "cache_read_tokens", "fleetpulse.tenant": "tenant",
}
if set(ATTRIBUTES) != {f.name for f in REQUEST}:
    raise ImportError(f"schemas.fast.ATTRIBUTES must name every field of REQUEST: "
                      f"{sorted(set(ATTRIBUTES) ^ {f.name for f in REQUEST})}")

#: Deepest nesting the fast path accepts in an event, bounded by counting
#: brackets. msgspec skips unknown fields to whatever depth its recursion check
#: allows; the validator's parsers stop at limits of their own (hundreds to
#: ~1,000 levels, by orjson version, Python version and stack). Well below all
#: of them the two read alike; past this bound the validator decides.
MAX_DEPTH = 64

#: msgspec type of each field kind, and the Python type its values take.
_TYPES = {"number": float, "integer": int, "string": str, "string_list": tuple[str, ...]}
_PYTHON = {"number": float, "integer": int, "string": str, "string_list": tuple}


def _annotation(field: Field) -> object:
    """The msgspec type that accepts exactly the JSON values ``field.check``
    accepts, except integral floats in integer fields (msgspec wants an
    integer there): those messages go to the validator."""
    if field.enum is not None:
        kind = Literal[field.enum]
    elif field.kind == "string":
        kind = Annotated[str, msgspec.Meta(min_length=1, max_length=field.max_length)]
    elif field.minimum is not None or field.maximum is not None:
        kind = Annotated[_TYPES[field.kind], msgspec.Meta(ge=field.minimum, le=field.maximum)]
    else:
        kind = _TYPES[field.kind]
    return Optional[kind] if field.nullable else kind


def _struct_field(field: Field) -> tuple:
    """(attribute, type[, default]) for msgspec.defstruct. Absent and null both
    read as None, which is only right where null is allowed."""
    name, kind = ATTRIBUTES[field.name], _annotation(field)
    if field.required:
        return name, kind
    if not field.nullable:
        raise ValueError(f"{field.name}: an optional field that must not be null has no RequestEvent form")
    return name, kind, None


RequestEvent = msgspec.defstruct(
    "RequestEvent", [_struct_field(f) for f in REQUEST], rename={ATTRIBUTES[f.name]: f.name for f in REQUEST},
    kw_only=True, frozen=True, gc=False,
    namespace={"__doc__": "A valid v1 request event (schemas.v1.REQUEST), attributes named as in ATTRIBUTES."})

#: An envelope whose events are kept as their own bytes, so each can be bounded
#: (nesting, numbers) on its own before it is decoded as a RequestEvent.
_Envelope = msgspec.defstruct(
    "_Envelope", [("type", Literal[BATCH]), ("version", _annotation(next(f for f in REQUEST if f.name == "version"))),
                  ("events", list[msgspec.Raw])], frozen=True, gc=False)

_EVENT = msgspec.json.Decoder(RequestEvent)
_ENVELOPE = msgspec.json.Decoder(_Envelope)
#: What msgspec raises on input it refuses (RecursionError: nested past its check).
_REFUSED = (msgspec.DecodeError, RecursionError)
#: Attribute getters of the list fields: each list present is one '[' an event must hold.
_LISTS = tuple(operator.attrgetter(ATTRIBUTES[f.name]) for f in REQUEST if f.kind == "string_list")
#: (wire name, attribute, Python type) of every field, to build a RequestEvent from a validated dict.
_CASTS = tuple((f.name, ATTRIBUTES[f.name], _PYTHON[f.kind]) for f in REQUEST)
#: bytes.translate table: ASCII digits to b"0", every other byte to b" ".
_DIGITS = bytes(ord("0") if byte in b"0123456789" else ord(" ") for byte in range(256))


@dataclasses.dataclass
class DecodedBatch:
    """Valid events of a batch of messages, and the dead letters of the rest."""

    events: list[RequestEvent]  # of all messages, in message order then envelope order
    per_message: list[int]  # valid events of each input message
    dead: list[tuple[int, DeadLetter]]  # (position of the message in the input, its dead letter)
    slow: list[int]  # positions of the messages decode_message decided


def decode_requests(values: Sequence[bytes], max_bytes: int) -> DecodedBatch:
    """Decode the Kafka message values of the request topic, each one event or
    one envelope. Never raises on bad input: what the fast path refuses is
    decoded by ``decode_message``, with its dead letters."""
    values = list(values)
    readable = _readable(values, max_bytes)
    first, refused = _map_refusing(_EVENT.decode, readable, _REFUSED)
    unusual = _unusual(readable)
    irregular = sorted(set(refused).union(unusual)) if unusual else refused
    if not irregular:
        return DecodedBatch(first, [1] * len(first), [], [])
    return _around(values, readable, first, irregular, max_bytes)


def _readable(values: list[bytes], max_bytes: int) -> list[bytes]:
    """``values``, with b"" (which msgspec refuses) in place of each message
    the fast path must not read: one over the size limit (the validator
    refuses it unread) or not UTF-8 (msgspec checks the strings it keeps, not
    the ones it skips). All in C; an ASCII batch needs one scan."""
    unreadable = [] if all(map(bytes.isascii, values)) else _map_refusing(bytes.decode, values, UnicodeDecodeError)[1]
    if max(map(len, values), default=0) > max_bytes:
        unreadable += [i for i, raw in enumerate(values) if len(raw) > max_bytes]
    if not unreadable:
        return values
    readable = list(values)
    for i in unreadable:
        readable[i] = b""
    return readable


def _map_refusing(function: Callable, values: list, errors: tuple | type) -> tuple[list, list[int]]:
    """``function`` over ``values``, in C; where it raises one of ``errors``,
    None among the results and the position listed. When ``map`` raises,
    ``len(out)`` is the position of the value that raised, and the same
    iterator carries on after it."""
    out: list = []
    refused: list[int] = []
    rest = iter(values)
    while True:
        try:
            out.extend(map(function, rest))
            return out, refused
        except errors:
            refused.append(len(out))
            out.append(None)


def _unusual(values: list[bytes]) -> list[int]:
    """Positions of the messages whose event the batch cannot vouch for
    without a closer look (``_single``): not flat (a '{' past the first byte,
    or more than one '['; a flat message nests two levels at most, whatever it
    holds), or long enough to hold an integer longer than Python reads (see
    ``_numbers_fit``). memchr scans, in C."""
    repeat = itertools.repeat
    flat = map(operator.and_, map(operator.le, map(bytes.rfind, values, repeat(b"{")), repeat(0)),
               map(operator.eq, map(bytes.find, values, repeat(b"[")), map(bytes.rfind, values, repeat(b"["))))
    short = map(operator.le, map(len, values), repeat(_digit_limit()))
    return list(itertools.compress(range(len(values)), map(operator.not_, map(operator.and_, flat, short))))


def _around(values: list[bytes], readable: list[bytes], first: list, irregular: list[int],
            max_bytes: int) -> DecodedBatch:
    """The batch, the irregular messages looked at one by one: the fast
    path's events where it vouches for the whole message, else
    decode_message's events and dead letters. The runs of plain single
    events between them are taken whole."""
    batch = DecodedBatch([], [], [], [])
    done = 0
    for i in irregular:
        _take(batch, first, done, i)
        events = _envelope(readable[i]) if first[i] is None else _single(readable[i], first[i])
        if events is None:
            batch.slow.append(i)
            decoded = safe_decode(values[i], max_bytes)
            batch.dead.extend((i, letter) for letter in decoded.dead)
            events = list(map(_from_dict, decoded.events))
        batch.events.extend(events)
        batch.per_message.append(len(events))
        done = i + 1
    _take(batch, first, done, len(first))
    return batch


def _take(batch: DecodedBatch, first: list, lo: int, hi: int) -> None:
    """Messages lo..hi-1, each one plain single event."""
    batch.events.extend(first[lo:hi])
    batch.per_message.extend(itertools.repeat(1, hi - lo))


def _single(raw: bytes, event: RequestEvent) -> list[RequestEvent] | None:
    """[event] if nothing in ``raw`` outside the event's fields can make the
    validator's verdict differ: at most MAX_DEPTH brackets (so no deeper
    nesting) and no over-long integer. Else None."""
    shallow = raw.count(b"{") + raw.count(b"[") <= MAX_DEPTH
    return [event] if shallow and _numbers_fit(raw) else None


def _envelope(raw: bytes) -> list[RequestEvent] | None:
    """The events of an envelope msgspec reads whole and valid, else None:
    any problem, even in one event, sends the whole message to the validator,
    so that the reasons of its bad events (``events[i].``) are the validator's."""
    try:
        parts = _ENVELOPE.decode(raw).events
        events = list(map(_EVENT.decode, parts))
    except _REFUSED:
        return None
    return events if _shallow_envelope(raw, parts, events) and _numbers_fit(raw, parts) else None


def _shallow_envelope(raw: bytes, parts: list[msgspec.Raw], events: list[RequestEvent]) -> bool:
    """Whether neither an event nor the envelope's own fields nest past
    MAX_DEPTH. Each bracket beyond those the envelope certainly holds (its
    '{', the '[' of its events, the '{' of each event and the '[' of each list
    decoded) adds a level at most, so when they are few that settles it. When
    they are not (every event nesting a little, in unknown fields), the
    brackets of each event, and of the envelope outside its events, are
    counted on their own, in C."""
    if _openers(raw) - 2 - _expected_openers(events) < MAX_DEPTH:
        return True
    chunks = list(map(bytes, parts))
    counts = list(map(operator.add, map(bytes.count, chunks, itertools.repeat(b"{")),
                      map(bytes.count, chunks, itertools.repeat(b"["))))
    return max(counts, default=0) <= MAX_DEPTH and _openers(raw) - sum(counts) <= MAX_DEPTH


def _expected_openers(events: list[RequestEvent]) -> int:
    """The '{' of each event and the '[' of each list field it holds, counted in C."""
    listed = sum(len(events) - list(map(getter, events)).count(None) for getter in _LISTS)
    return len(events) + listed


def _openers(data: bytes) -> int:
    """How many '{' and '[' bytes ``data`` holds. numpy counts a large buffer
    about five times faster than bytes.count, which wins on small ones."""
    if len(data) < 1 << 14:
        return data.count(b"{") + data.count(b"[")
    array = np.frombuffer(data, np.uint8)
    return int(np.count_nonzero(array == ord("{")) + np.count_nonzero(array == ord("[")))


def _digit_limit() -> float:
    """Python's int() reads at most this many digits (sys.set_int_max_str_digits; 0 means no limit)."""
    return sys.get_int_max_str_digits() or float("inf")


def _numbers_fit(raw: bytes, parts: Sequence[msgspec.Raw] = ()) -> bool:
    """Whether ``raw`` holds no run of digits longer than Python's int() reads.
    The validator's second parser (the stdlib's, for what orjson refuses)
    fails on such an integer and refuses its message or event, while msgspec
    skips it in an unknown field. A run lies inside one event (an object,
    braces at both ends) or wholly outside them, so short events and short
    envelope bytes outside them settle it; failing that, the digits are read."""
    limit = _digit_limit()
    lengths = list(map(len, parts))
    if len(raw) - sum(lengths) <= limit and max(lengths, default=0) <= limit:
        return True
    return b"0" * (int(limit) + 1) not in raw.translate(_DIGITS)


def _from_dict(event: dict) -> RequestEvent:
    """A RequestEvent from an event the validator accepted: values equal to
    the dict's, typed as msgspec types them (2 -> 2.0 in a number field,
    lists as tuples; integral floats are already ints)."""
    return RequestEvent(**{attr: None if (value := event.get(wire)) is None else cast(value)
                           for wire, attr, cast in _CASTS})
