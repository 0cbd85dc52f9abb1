"""Decode a whole batch of request messages into Arrow columns, in C++.

``decode_columns`` is the worker's hot path. Arrow's JSON reader parses the
batch's messages (one per line) straight into typed columns, on Arrow's own
threads and without the GIL: no Python object per event or per message. The
schema it reads with is generated from ``schemas.v1.REQUEST`` (one
definition), and every limit of the fields is then checked over whole columns
with numpy and Arrow compute.

It may only accept what the validator (``schemas.validate.decode_message``)
accepts, with the same values. Anything it cannot vouch for goes to the
msgspec decoder (``schemas.fast.decode_requests``), which gives it to the
validator in turn when it cannot vouch either:

- a message failing a check (a bad value, an unusual shape) goes there on its own;
- when Arrow refuses the batch as a whole (a type error, a duplicate key, a
  lone surrogate, text that is not JSON), the whole batch goes there.

docs/schemas.md ("The columnar path") lists where Arrow reads JSON differently
from the validator and how each difference is closed here;
tests/unit/schemas/test_columnar.py holds it to the same traps, properties and
corpora as the msgspec path.
"""

from __future__ import annotations

import dataclasses
import io
import os
from typing import Sequence

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from fleetpulse.schemas.fast import decode_requests
from fleetpulse.schemas.fields import Field
from fleetpulse.schemas.v1 import REQUEST, VERSION
from fleetpulse.schemas.validate import BATCH, DeadLetter

_ARROW = {"number": pa.float64(), "integer": pa.int64(), "string": pa.string(), "string_list": pa.list_(pa.string())}
#: One request event as Arrow reads it: every field of REQUEST, by its wire name.
EVENT = pa.struct([pa.field(f.name, _ARROW[f.kind]) for f in REQUEST])
#: What a line may hold: a request event, or an envelope (``type`` "batch")
#: whose ``events`` are request events. The union is read in one pass; a row's
#: ``type`` says which it is.
_LINE = pa.schema(list(EVENT) + [pa.field("events", pa.list_(EVENT))])
#: A field the schema does not know makes Arrow refuse the batch. The validator
#: ignores unknown fields, however deep they nest and whatever numbers or bytes
#: they hold, where its own parsers have limits Arrow does not share; with only
#: known fields, nothing nests deeper than a list of strings in an event of an
#: envelope, and every string is one Arrow reads (its UTF-8 is checked before).
_PARSE = pj.ParseOptions(explicit_schema=_LINE, unexpected_field_behavior="error", newlines_in_values=False)
#: Smallest block Arrow parses on one thread: a large batch is split into two
#: blocks per core (_CORES), a small one is not split.
_BLOCK = 1 << 20
_CORES = max(os.cpu_count() or 1, 1)


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
    one envelope; None when Arrow refuses the batch as a whole (then the
    msgspec path, ``decode_requests``, decides every message). Never raises
    on bad input."""
    values = list(values)
    if not values:
        return None
    sizes = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    text = b"\n".join(values)
    usual = _usual(values, text, sizes, max_bytes)
    table = _read(values, text, sizes, usual)
    if table is None:
        return None
    kind = table.column("type").to_numpy(zero_copy_only=False)
    single = kind == "request"
    envelope = kind == BATCH
    ok = usual & (single | envelope)
    ok &= ~single | _valid(_columns_of(table))
    events = table.column("events").combine_chunks()
    lengths = pc.fill_null(pc.list_value_length(events), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    if envelope.any():
        ok &= ~envelope | _envelopes_valid(table, events)
    fast_single, fast_envelope = single & ok, envelope & ok
    per_message = np.where(fast_single, 1, np.where(fast_envelope, lengths, 0)).astype(np.int64)
    parts, owners = [], []
    if fast_single.any():
        parts.append(_struct(table, fast_single))
        owners.append(np.flatnonzero(fast_single))
    if fast_envelope.any():
        parts.append(events.filter(pa.array(fast_envelope)).flatten())
        owners.append(np.repeat(np.flatnonzero(fast_envelope), lengths[fast_envelope]))
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


def _read(values: list[bytes], text: bytes, sizes: np.ndarray, usual: np.ndarray) -> pa.Table | None:
    """The batch as one Arrow table, a row per message (one per line of
    ``text``, the messages joined by line breaks); None when Arrow refuses
    it, or when a message did not give exactly one row. Every line starts an
    object (a message the columnar path does not read is replaced by ``{}``,
    an empty row), so each gives a row or an error, and more rows than
    messages is how one holding a line break, or more than one JSON value,
    shows."""
    if not usual.all():
        values = [v if u else b"{}" for v, u in zip(values, usual.tolist())]
        text = b"\n".join(values)
        sizes = np.where(usual, sizes, 2)
    # Two blocks per core (Arrow parses blocks in parallel, and each block has
    # a fixed cost: fewer, larger blocks than 1 MiB cost ~8% less CPU), never
    # one shorter than a line.
    block = max(_BLOCK, -(-len(text) // (2 * _CORES)), int(sizes.max()) + 2)
    options = pj.ReadOptions(use_threads=True, block_size=block)
    try:
        table = pj.read_json(io.BytesIO(text), read_options=options, parse_options=_PARSE)
    except (pa.ArrowException, UnicodeDecodeError, ValueError):
        return None
    return table if table.num_rows == len(values) else None


def _usual(values: list[bytes], text: bytes, sizes: np.ndarray, max_bytes: int) -> np.ndarray:
    """Which messages the columnar path reads itself: one JSON object with
    nothing around it (no BOM, no whitespace: those go the per-message way),
    within the size limit, and UTF-8. Tested on ``text`` (the messages
    joined by line breaks) with numpy: each message's first and last byte."""
    raw = np.frombuffer(text, dtype=np.uint8)
    starts = np.cumsum(sizes + 1) - sizes - 1
    last = max(len(raw) - 1, 0)
    ok = (sizes >= 2) & (sizes <= max_bytes)
    if len(raw):
        ok &= (raw[np.minimum(starts, last)] == ord("{")) & (raw[np.clip(starts + sizes - 1, 0, last)] == ord("}"))
    # Arrow does not check the UTF-8 of the strings it reads. The joined text
    # is UTF-8 exactly when every message is (a line break is a byte of its own).
    if not text.isascii() and not _utf8(text):
        ok &= np.fromiter(map(_utf8, values), dtype=bool, count=len(values))
    return ok


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _columns_of(rows: pa.Table | pa.StructArray) -> dict[str, pa.Array]:
    if isinstance(rows, pa.Table):
        return {f.name: rows.column(f.name).combine_chunks() for f in REQUEST}
    return dict(zip((f.name for f in REQUEST), rows.flatten()))  # flatten: a null event's fields read null


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
    else:  # string_list: every item a string (Arrow reads a null item as null)
        items = pc.list_flatten(column)
        if items.null_count:
            bad = pc.list_parent_indices(column).to_numpy(zero_copy_only=False)[
                items.is_null().to_numpy(zero_copy_only=False)]
            good = np.ones(len(column), dtype=bool)
            good[bad] = False
        else:
            good = np.ones(len(column), dtype=bool)
    return ok & (~present | good)


def _envelopes_valid(table: pa.Table, events: pa.ListArray) -> np.ndarray:
    """Which rows are envelopes the columnar path vouches for whole: version 1,
    a list of events, every one a valid request event (an envelope inside an
    envelope is not). Any problem sends the whole envelope to the per-message
    path, so that each bad event's reason (``events[i].``) is the validator's."""
    ok = pc.fill_null(pc.equal(table.column("version").combine_chunks(), VERSION), False).to_numpy(
        zero_copy_only=False)
    ok &= events.is_valid().to_numpy(zero_copy_only=False)
    flat = events.flatten()
    if len(flat):
        owner = pc.list_parent_indices(events).to_numpy(zero_copy_only=False)
        bad = ~(_valid(_columns_of(flat)) & flat.is_valid().to_numpy(zero_copy_only=False))
        ok[np.unique(owner[bad])] = False
    return ok


def _struct(table: pa.Table, rows: np.ndarray) -> pa.StructArray:
    """The single-event rows as request events."""
    picked = table if rows.all() else table.filter(pa.array(rows))
    return pa.StructArray.from_arrays([picked.column(f.name).combine_chunks() for f in REQUEST],
                                      fields=list(EVENT))


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
