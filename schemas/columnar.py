"""Decode a whole batch of request messages into Arrow columns, in Rust.

``decode_columns`` is the worker's hot path. The scanner (``schemas.scan``,
Rust, off the GIL) reads every message of the batch in one call straight into
typed columns: no Python object per event or per message. Its fields come
from ``schemas.v1.REQUEST`` (one definition), and every limit of the fields
is then checked over whole columns with numpy and Arrow compute.

It may only accept what the validator (``schemas.validate.decode_message``)
accepts, with the same values. Anything it cannot vouch for goes, on its own,
to the msgspec decoder (``schemas.fast.decode_requests``), which gives it to
the validator in turn when it cannot vouch either: a message the scanner
leaves (outside the subset of JSON it reads: an unknown field, an escape in a
string, a duplicate key, ``5.0`` for an integer...) or one that fails a check
(a bad value; for an envelope, any bad event).

docs/schemas.md ("The columnar path") lists what goes which way;
tests/unit/schemas/test_columnar.py holds it to the same traps, properties and
corpora as the msgspec path.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fleetpulse.schemas.fast import decode_requests
from fleetpulse.schemas.fields import Field
from fleetpulse.schemas.scan import EVENT, UNUSUAL, scan
from fleetpulse.schemas.v1 import REQUEST
from fleetpulse.schemas.validate import DeadLetter


@dataclasses.dataclass
class DecodedColumns:
    """Valid events of a batch of messages as one Arrow struct array (``EVENT``),
    in message order then envelope order, and the dead letters of the rest."""

    events: pa.StructArray
    per_message: np.ndarray  # int64: valid events of each input message
    dead: list[tuple[int, DeadLetter]]  # (position of the message in the input, its dead letter)
    slow: list[int]  # positions of the messages the per-message validator decided
    unusual: int = 0  # messages the columnar path left to the msgspec path (slow ones included)


def decode_columns(values: Sequence[bytes], max_bytes: int) -> DecodedColumns | None:
    """Decode the Kafka message values of the request topic, each one event or
    one envelope; None for an empty batch, or when the scanner failed (a bug
    it caught: then the msgspec path, ``decode_requests``, decides every
    message). Never raises on bad input."""
    values = list(values)
    if not values:
        return None
    sizes = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    text = b"\n".join(values)
    starts = np.cumsum(sizes + 1) - sizes - 1
    scanned = scan(text, starts, sizes, _usual(text, starts, sizes, max_bytes))
    if scanned is None:
        return None
    ok = scanned.kinds != UNUSUAL
    events, counts = scanned.events, scanned.counts
    if len(events):
        # An event failing a check sends its whole message (an envelope with
        # all its events) the per-message way, so each reason is the validator's.
        bad = ~_valid(_columns_of(events))
        if bad.any():
            owner = np.repeat(np.arange(len(values)), counts)
            ok[owner[bad]] = False
            events = events.filter(pa.array(ok[owner]))
    per_message = np.where(ok, counts, 0).astype(np.int64)
    parts, owners = [events], [np.repeat(np.flatnonzero(ok), counts[ok])]
    unusual = np.flatnonzero(~ok)
    dead: list[tuple[int, DeadLetter]] = []
    validator: list[int] = []
    if len(unusual):  # each on its own: the msgspec path, and the validator where that cannot vouch
        slow = decode_requests([values[i] for i in unusual.tolist()], max_bytes)
        per_message[unusual] = slow.per_message
        dead = [(int(unusual[i]), letter) for i, letter in slow.dead]
        validator = [int(unusual[i]) for i in slow.slow]
        parts.append(as_arrow(slow.events))
        owners.append(np.repeat(unusual, slow.per_message))
    return DecodedColumns(_in_message_order(parts, owners), per_message, dead, validator, len(unusual))


def _usual(text: bytes, starts: np.ndarray, sizes: np.ndarray, max_bytes: int) -> np.ndarray:
    """Which messages the scanner reads: one JSON object with nothing around
    it (no BOM, no whitespace: those go the per-message way) and within the
    size limit. Tested on ``text`` (the messages joined by line breaks) with
    numpy: each message's first and last byte. The scanner checks the UTF-8
    of every string it reads, and nothing else it accepts can hold a byte
    past ASCII."""
    raw = np.frombuffer(text, dtype=np.uint8)
    last = max(len(raw) - 1, 0)
    ok = (sizes >= 2) & (sizes <= max_bytes)
    if len(raw):
        ok &= (raw[np.minimum(starts, last)] == ord("{")) & (raw[np.clip(starts + sizes - 1, 0, last)] == ord("}"))
    return ok


def _columns_of(events: pa.StructArray) -> dict[str, pa.Array]:
    return dict(zip((f.name for f in REQUEST), events.flatten()))


def _valid(columns: dict[str, pa.Array]) -> np.ndarray:
    """Which rows hold a valid request event, every field checked over the whole column."""
    ok = np.ones(len(columns[REQUEST[0].name]), dtype=bool)
    for field in REQUEST:
        ok &= _field_ok(field, columns[field.name])
    return ok


def _field_ok(field: Field, column: pa.Array) -> np.ndarray:
    """``field.check`` over a column: null only where allowed (absent reads as
    null, and both are allowed or refused alike), then the field's limits."""
    present = column.is_valid().to_numpy(zero_copy_only=False)
    ok = present.copy() if field.required else np.ones(len(column), dtype=bool)
    if not present.any():
        return ok
    if field.kind in ("number", "integer"):
        x = pc.fill_null(column, 0).to_numpy(zero_copy_only=False)
        good = np.isfinite(x) if field.kind == "number" else np.ones(len(x), dtype=bool)
        if field.minimum is not None:
            good &= x >= field.minimum
        if field.maximum is not None:
            good &= x <= field.maximum
    elif field.kind == "string":
        if field.enum is not None:
            good = pc.fill_null(pc.is_in(column, value_set=pa.array(field.enum)), False).to_numpy(
                zero_copy_only=False)
        else:
            length = pc.fill_null(pc.utf8_length(column), 1).to_numpy(zero_copy_only=False)
            good = (length >= 1) & (length <= (field.max_length or np.iinfo(np.int64).max))
    else:  # string_list: the scanner reads a list of strings only (an item of another kind leaves the message)
        good = np.ones(len(column), dtype=bool)
    return ok & (~present | good)


def as_arrow(events: list) -> pa.StructArray:
    """Events the msgspec path decoded (rare: what the columnar path left to
    it) as request events; wire names come from the struct's own renames."""
    return pa.array(msgspec.to_builtins(events), type=EVENT)


def _in_message_order(parts: list[pa.StructArray], owners: list[np.ndarray]) -> pa.StructArray:
    """The events of every part, in the order of the messages they came from
    (a stable sort by message keeps each envelope's order)."""
    if not parts:
        return pa.array([], type=EVENT)
    if len(parts) == 1:
        return parts[0]
    merged = pa.concat_arrays(parts)
    order = np.argsort(np.concatenate(owners), kind="stable")
    return merged.take(pa.array(order))
