"""Decode Kafka message bytes into valid events and dead letters.

A message is either one event (``{"type": "request", "version": 1, ...}``, what
any language can send) or a batch envelope (``{"type": "batch", "version": 1,
"events": [...]}``, what the Python SDK sends). Decoding never raises on bad
input: every problem becomes a :class:`DeadLetter` with the reason and the
bytes, so the worker can route it and keep going.

The invariant (docs/schemas.md): every message ends as counted events and dead
letters, nothing else. A single-event message is one or the other. Each event
of an envelope is one or the other, whatever its neighbours hold: its letter's
reason starts with ``events[i].``. Only a message that is not an envelope we
can split (not UTF-8, not JSON at its top level, a bad header, over the size
limit) becomes one letter as a whole.
"""

from __future__ import annotations

import dataclasses
import json
import re

import orjson

from fleetpulse.errors import ValidationError
from fleetpulse.schemas.v1 import SCHEMAS, VERSION

BATCH = "batch"


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """An input that could not be used. ``raw`` is the original bytes of the
    message, or, for one bad event inside an envelope, that event's bytes."""

    reason: str
    raw: bytes


@dataclasses.dataclass
class Decoded:
    """The valid events of one message and its dead letters. ``index`` holds
    each event's position in its envelope (None for a single-event message),
    so a later stage that refuses an event (too old to store) can say which."""

    events: list[dict]
    dead: list[DeadLetter]
    raw: bytes = b""
    index: list[int] | None = None

    def letter(self, k: int, reason: str) -> DeadLetter:
        """A dead letter for the k-th event: building one never fails."""
        if self.index is None:
            return DeadLetter(reason, self.raw)
        return DeadLetter(f"events[{self.index[k]}].{reason}", reencode(self.events[k], self.raw))


def validate_event(obj: object, expected_type: str) -> dict:
    """Return ``obj`` if it is a valid event of ``expected_type``, else raise
    ValidationError. An integral float in an integer field (``5.0``, a
    ``version`` of ``1.0``) is accepted and replaced by the int in ``obj``;
    an event that is refused is left as it came (its dead letter shows it so)."""
    if not isinstance(obj, dict):
        raise ValidationError("<event>", f"expected a JSON object, got {type(obj).__name__}")
    kind = obj.get("type")
    if kind != expected_type:
        raise ValidationError("type", f"expected {expected_type!r} on this topic, got {kind!r}")
    _check_version(obj)
    stored = [] if type(obj["version"]) is int else [("version", VERSION)]
    for name, required, ok, field in _COMPILED[expected_type]:
        value = obj.get(name, _MISSING)
        if value is _MISSING:
            if required:
                raise ValidationError(name, "is required")
        elif value is None or not ok(value):
            checked = field.check(value)  # raises with the reason, or accepts what the fast check could not
            if checked is not value:
                stored.append((name, checked))
    obj.update(stored)
    return obj


_MISSING = object()
#: Per schema: (name, required, fast predicate, field) for every field but the header,
#: which ``type`` and ``_check_version`` have just checked.
_COMPILED = {
    kind: tuple((f.name, f.required, f.fast_check(), f) for f in fields if f.name not in ("type", "version"))
    for kind, fields in SCHEMAS.items()
}


def _check_version(obj: dict) -> None:
    version = obj.get("version")
    if version != VERSION or isinstance(version, bool):
        raise ValidationError("version", f"unknown version {version!r}; this build reads version {VERSION}")


def decode_message(raw: bytes, expected_type: str, max_bytes: int) -> Decoded:
    """Split one Kafka message value into valid events and dead letters."""
    if len(raw) > max_bytes:
        reason = f"message: {len(raw)} bytes is over the {max_bytes}-byte limit (FLEETPULSE_MAX_MESSAGE_BYTES)"
        return Decoded([], [DeadLetter(reason, raw)], raw)
    try:
        obj = orjson.loads(raw)
        checked = True  # orjson reads only valid UTF-8 without lone surrogates: every string is storable
    except orjson.JSONDecodeError:
        try:
            obj, checked = _parse_leniently(raw), False
        except ValueError as exc:
            return _split_by_hand(raw, expected_type) or \
                Decoded([], [DeadLetter(f"message: not valid JSON: {exc}", raw)], raw)
    if isinstance(obj, dict) and obj.get("type") == BATCH:
        return _decode_batch(obj, raw, expected_type, checked)
    try:
        if not checked:
            _check_storable(obj)
        return Decoded([validate_event(obj, expected_type)], [], raw)
    except ValidationError as exc:
        return Decoded([], [DeadLetter(str(exc), raw)], raw)


def safe_decode(raw: bytes, max_bytes: int, kind: str = "request") -> Decoded:
    """decode_message never raises on any input we know of; should one still
    surprise it, that message becomes a dead letter instead of stopping the worker."""
    try:
        return decode_message(raw, kind, max_bytes)
    except Exception as exc:  # noqa: BLE001 -- the last line of defence, by design
        return Decoded([], [DeadLetter(f"message: could not be decoded ({type(exc).__name__}: {exc})", raw)], raw)


def _parse_leniently(raw: bytes) -> object:
    """The stdlib parser, for what orjson refuses: NaN and Infinity (which many
    JSON encoders emit; they then fail validation with the field named),
    integers past 64 bits and lone surrogates (which may sit in one event of an
    envelope: only that event is refused). UTF-8 only, without a BOM."""
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _check_storable(event: object) -> None:
    """Refuse what the lenient parser let through but no store can hold: a
    string with a lone UTF-16 surrogate (``"\\ud800"``) is not Unicode text."""
    try:
        json.dumps(event, ensure_ascii=False, allow_nan=True).encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("<event>", "a string holds a lone UTF-16 surrogate escape, which is not Unicode text") \
            from None
    except (RecursionError, ValueError):
        raise ValidationError("<event>", "nested too deeply") from None


def _decode_batch(obj: dict, raw: bytes, expected_type: str, checked: bool,
                  parts: list[bytes] | None = None) -> Decoded:
    try:
        _check_version(obj)
    except ValidationError as exc:
        return Decoded([], [DeadLetter(f"batch {exc}", raw)], raw)
    events = obj.get("events")
    if not isinstance(events, list):
        return Decoded([], [DeadLetter("batch events: expected a list of events", raw)], raw)
    out = Decoded([], [], raw, [])
    for i, event in enumerate(events):
        try:
            if isinstance(event, _Unreadable):
                raise ValidationError("<event>", f"not valid JSON: {event.why}")
            if isinstance(event, _Lenient):
                event = event.value
                _check_storable(event)
            elif not checked:
                _check_storable(event)
            out.events.append(validate_event(event, expected_type))
            out.index.append(i)
        except ValidationError as exc:
            own = parts[i] if parts is not None else reencode(event, raw)
            out.dead.append(DeadLetter(f"events[{i}].{exc}", own))
    return out


def reencode(event: object, fallback: bytes) -> bytes:
    """One event of an envelope, as JSON, for its dead letter. The stdlib keeps
    NaN/Infinity as written (orjson would turn them into null and hide the
    problem); ASCII escapes keep any odd string encodable. An event no encoder
    can write (nested past the recursion limit) keeps ``fallback``: the bytes
    of the whole message, whose letter reason names the event."""
    try:
        return json.dumps(event, separators=(",", ":")).encode()
    except (RecursionError, ValueError, TypeError):
        return fallback


@dataclasses.dataclass(frozen=True)
class _Unreadable:
    """An event of a hand-split envelope that no parser reads."""

    why: str


@dataclasses.dataclass(frozen=True)
class _Lenient:
    """An event of a hand-split envelope that only the stdlib parser reads: its strings are checked."""

    value: object


def _split_by_hand(raw: bytes, expected_type: str) -> Decoded | None:
    """An envelope neither parser reads whole (one event nested past their depth
    limits, or one with bytes that are not UTF-8), split at its top level by
    bracket matching, so each event is read, and refused, on its own. None when
    ``raw`` is not such an envelope."""
    try:
        members = dict(_members(raw))
        header = {k: _parse_part(v) for k, v in members.items() if k in ("type", "version")}
        if header.get("type") != BATCH or "events" not in members:
            return None
        parts = _elements(members["events"])
    except (ValueError, IndexError):
        return None
    events: list[object] = []
    for part in parts:
        try:
            events.append(orjson.loads(part))
        except orjson.JSONDecodeError:
            try:
                events.append(_Lenient(_parse_leniently(part)))
            except ValueError as exc:
                events.append(_Unreadable(str(exc)))
    return _decode_batch({**header, "events": events}, raw, expected_type, checked=True, parts=parts)


def _parse_part(part: bytes) -> object:
    try:
        return orjson.loads(part)
    except orjson.JSONDecodeError:
        return _parse_leniently(part)


_SPACE = re.compile(rb"\s*")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_BRACKET = re.compile(rb'["\[\]{}]')
_SCALAR = re.compile(rb"[^,\]}\s]+")


def _members(raw: bytes):
    """(key, value bytes) of a top-level JSON object; ValueError if it is not one."""
    pos = _SPACE.match(raw).end()
    if raw[pos:pos + 1] != b"{":
        raise ValueError("not an object")
    pos = _SPACE.match(raw, pos + 1).end()
    while raw[pos:pos + 1] != b"}":
        key = _STRING.match(raw, pos)
        if key is None:
            raise ValueError("expected a key")
        pos = _SPACE.match(raw, key.end()).end()
        if raw[pos:pos + 1] != b":":
            raise ValueError("expected ':'")
        start = _SPACE.match(raw, pos + 1).end()
        end = _skip_value(raw, start)
        yield json.loads(key.group().decode("utf-8")), raw[start:end]
        pos = _SPACE.match(raw, end).end()
        if raw[pos:pos + 1] == b",":
            pos = _SPACE.match(raw, pos + 1).end()
        elif raw[pos:pos + 1] != b"}":
            raise ValueError("expected ',' or '}'")
    if raw[_SPACE.match(raw, pos + 1).end():]:
        raise ValueError("bytes after the object")


def _elements(array: bytes) -> list[bytes]:
    """The bytes of each element of a JSON array; ValueError if it is not one."""
    if array[:1] != b"[":
        raise ValueError("not an array")
    parts, pos = [], _SPACE.match(array, 1).end()
    while array[pos:pos + 1] != b"]":
        end = _skip_value(array, pos)
        parts.append(array[pos:end])
        pos = _SPACE.match(array, end).end()
        if array[pos:pos + 1] == b",":
            pos = _SPACE.match(array, pos + 1).end()
        elif array[pos:pos + 1] != b"]":
            raise ValueError("expected ',' or ']'")
    return parts


def _skip_value(raw: bytes, pos: int) -> int:
    """Where the JSON value starting at ``pos`` ends, at any depth, without parsing it."""
    first = raw[pos:pos + 1]
    if first == b'"':
        string = _STRING.match(raw, pos)
        if string is None:
            raise ValueError("unterminated string")
        return string.end()
    if first not in (b"{", b"["):
        scalar = _SCALAR.match(raw, pos)
        if scalar is None:
            raise ValueError("expected a value")
        return scalar.end()
    depth = 0
    while True:
        found = _BRACKET.search(raw, pos)
        if found is None:
            raise ValueError("unterminated array or object")
        char = found.group()
        if char == b'"':
            string = _STRING.match(raw, found.start())
            if string is None:
                raise ValueError("unterminated string")
            pos = string.end()
            continue
        depth += 1 if char in (b"{", b"[") else -1
        pos = found.end()
        if depth == 0:
            return pos


def encode_batch(events: list[dict]) -> bytes:
    """The batch envelope the SDK sends: one Kafka message, many events."""
    return orjson.dumps({"type": BATCH, "version": VERSION, "events": events})
