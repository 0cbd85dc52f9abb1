"""Decode Kafka message bytes into valid events and dead letters.

A message is either one event (``{"type": "request", "version": 1, ...}``, what
any language can send) or a batch envelope (``{"type": "batch", "version": 1,
"events": [...]}``, what the Python SDK sends). Decoding never raises on bad
input: every problem becomes a :class:`DeadLetter` with the reason and the
bytes, so the worker can route it and keep going.
"""

from __future__ import annotations

import dataclasses
import json

import orjson

from fleetpulse.errors import ValidationError
from fleetpulse.schemas.v1 import SCHEMAS, VERSION

BATCH = "batch"


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """An input that could not be used. ``raw`` is the original bytes of the
    message, or, for one bad event inside a good envelope, that event re-encoded."""

    reason: str
    raw: bytes


@dataclasses.dataclass
class Decoded:
    events: list[dict]
    dead: list[DeadLetter]


def validate_event(obj: object, expected_type: str) -> dict:
    """Return ``obj`` if it is a valid event of ``expected_type``, else raise ValidationError."""
    if not isinstance(obj, dict):
        raise ValidationError("<event>", f"expected a JSON object, got {type(obj).__name__}")
    kind = obj.get("type")
    if kind != expected_type:
        raise ValidationError("type", f"expected {expected_type!r} on this topic, got {kind!r}")
    _check_version(obj)
    for name, required, ok, field in _COMPILED[expected_type]:
        value = obj.get(name, _MISSING)
        if value is _MISSING:
            if required:
                raise ValidationError(name, "is required")
        elif value is None or not ok(value):
            field.check(value)  # raises with the reason, or accepts what the fast check could not
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
        return Decoded([], [DeadLetter(reason, raw)])
    try:
        obj = _parse(raw)
    except ValueError as exc:
        return Decoded([], [DeadLetter(f"message: not valid JSON: {exc}", raw)])
    if isinstance(obj, dict) and obj.get("type") == BATCH:
        return _decode_batch(obj, raw, expected_type)
    try:
        return Decoded([validate_event(obj, expected_type)], [])
    except ValidationError as exc:
        return Decoded([], [DeadLetter(str(exc), raw)])


def _parse(raw: bytes) -> object:
    """orjson first; the stdlib parser only for what orjson refuses, because it
    also reads the NaN/Infinity that many JSON encoders emit. Those then fail
    validation with the field named, and the good events beside them survive.
    What the stdlib reads but orjson refused for other reasons (lone UTF-16
    surrogates, nesting deeper than orjson allows) is refused here."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        obj = json.loads(raw)
    except RecursionError as exc:
        raise ValueError("nested too deeply") from exc
    try:
        orjson.dumps(obj)  # every string must be valid UTF-8 to be stored
    except orjson.JSONEncodeError as exc:
        raise ValueError(f"{exc}") from exc
    return obj


def _decode_batch(obj: dict, raw: bytes, expected_type: str) -> Decoded:
    try:
        _check_version(obj)
    except ValidationError as exc:
        return Decoded([], [DeadLetter(f"batch {exc}", raw)])
    events = obj.get("events")
    if not isinstance(events, list):
        return Decoded([], [DeadLetter("batch events: expected a list of events", raw)])
    out = Decoded([], [])
    for i, event in enumerate(events):
        try:
            out.events.append(validate_event(event, expected_type))
        except ValidationError as exc:
            out.dead.append(DeadLetter(f"events[{i}].{exc}", _reencode(event)))
    return out


def _reencode(event: object) -> bytes:
    """One bad event of an envelope, as JSON. The stdlib keeps NaN/Infinity as
    written (orjson would turn them into null and hide the problem); ASCII
    escapes keep any odd string encodable."""
    return json.dumps(event, separators=(",", ":")).encode()


def encode_batch(events: list[dict]) -> bytes:
    """The batch envelope the SDK sends: one Kafka message, many events."""
    return orjson.dumps({"type": BATCH, "version": VERSION, "events": events})
