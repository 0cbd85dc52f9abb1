"""Read a whole batch of request messages into Arrow columns, in Rust.

The scanner (``schemas/native``, built into ``fleetpulse.schemas._scan`` when
the package is installed) reads every message of a batch in one call, off the
GIL (ctypes releases it), into one typed column per field of
``schemas.v1.REQUEST``; no Python runs per message or per event. It reads a
strict subset of JSON (schemas/native/src/lib.rs lists it) and marks any
message outside it "unusual", for the per-message decoders. The limits of the
values are not its business: ``schemas.columnar`` checks them over the columns.
"""

from __future__ import annotations

import ctypes
import dataclasses
import importlib.util

import numpy as np
import pyarrow as pa

from fleetpulse.schemas.v1 import REQUEST, VERSION
from fleetpulse.schemas.validate import BATCH

UNUSUAL, SINGLE, ENVELOPE = 0, 1, 2
_KINDS = {"number": b"n", "integer": b"i", "string": b"s", "string_list": b"l"}
_TYPES = {"number": pa.float64(), "integer": pa.int64(), "string": pa.string(), "string_list": pa.list_(pa.string())}
#: One request event as Arrow columns: every field of REQUEST, by its wire name.
EVENT = pa.struct([pa.field(f.name, _TYPES[f.kind]) for f in REQUEST])


def _load() -> tuple[ctypes.CDLL, int]:
    spec = importlib.util.find_spec("fleetpulse.schemas._scan")
    if spec is None or not spec.origin:
        raise ImportError("fleetpulse's scanner (fleetpulse.schemas._scan, built from schemas/native with cargo) "
                          "is not built: run scripts/bootstrap.sh, or pip install the package with a Rust toolchain")
    lib = ctypes.CDLL(spec.origin)
    size, i64, u8 = ctypes.c_size_t, ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_uint8)
    lib.fp_schema_new.restype = ctypes.c_void_p
    lib.fp_schema_new.argtypes = [ctypes.c_char_p, size, ctypes.c_char_p, size, ctypes.c_char_p, size, ctypes.c_int64]
    lib.fp_scan.restype = ctypes.c_void_p
    lib.fp_scan.argtypes = [ctypes.c_void_p, ctypes.c_char_p, size, i64, i64, u8, size]
    lib.fp_rows.restype = size
    lib.fp_rows.argtypes = [ctypes.c_void_p]
    lib.fp_buffer.restype = ctypes.c_void_p
    lib.fp_buffer.argtypes = [ctypes.c_void_p, size, ctypes.POINTER(size)]
    lib.fp_free.restype = None
    lib.fp_free.argtypes = [ctypes.c_void_p]
    names = "\n".join(f.name for f in REQUEST).encode()
    kinds = b"".join(_KINDS[f.kind] for f in REQUEST)
    schema = lib.fp_schema_new(names, len(names), kinds, len(REQUEST), BATCH.encode(), len(BATCH), VERSION)
    if not schema:
        raise ImportError("fleetpulse's scanner refused schemas.v1.REQUEST (it needs a string `type`, an integer "
                          "`version` and fewer than 63 fields)")
    return lib, schema


_LIB, _SCHEMA = _load()


@dataclasses.dataclass
class Scanned:
    """Per message its kind (UNUSUAL, SINGLE or ENVELOPE) and its number of
    events; the events of the others as one struct array, in message order."""

    kinds: np.ndarray  # uint8
    counts: np.ndarray  # int64
    events: pa.StructArray


def scan(text: bytes, starts: np.ndarray, sizes: np.ndarray, usual: np.ndarray) -> Scanned | None:
    """Message ``i`` is ``text[starts[i]:starts[i] + sizes[i]]``; only the
    ``usual`` ones are read (the others are UNUSUAL). None if the scanner
    failed (a bug, caught in Rust): the caller decodes the batch another way."""
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    sizes = np.ascontiguousarray(sizes, dtype=np.int64)
    usual = np.ascontiguousarray(usual, dtype=np.uint8)
    n = len(starts)
    if len(sizes) != n or len(usual) != n:
        raise ValueError("scan: starts, sizes and usual must have one value per message")
    i64, u8 = ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_uint8)
    handle = _LIB.fp_scan(_SCHEMA, text, len(text), starts.ctypes.data_as(i64), sizes.ctypes.data_as(i64),
                          usual.ctypes.data_as(u8), n)
    if not handle:
        return None
    owner = _Owner(handle)
    rows = _LIB.fp_rows(handle)
    kinds = np.frombuffer(_buffer(owner, 0), dtype=np.uint8)
    counts = np.frombuffer(_buffer(owner, 1), dtype=np.int64)
    arrays = [_array(owner, k, field.kind, rows) for k, field in enumerate(REQUEST)]
    return Scanned(kinds, counts, pa.StructArray.from_arrays(arrays, fields=list(EVENT)))


class _Owner:
    """One scan's memory in Rust, freed when the last buffer over it goes:
    the columns are Rust's own buffers, never copied."""

    def __init__(self, handle: int) -> None:
        self.handle = handle
        self._free = _LIB.fp_free  # held: module globals may be gone when the last one goes, at exit

    def __del__(self) -> None:
        self._free(self.handle)


def _buffer(owner: _Owner, index: int) -> pa.Buffer:
    length = ctypes.c_size_t()
    pointer = _LIB.fp_buffer(owner.handle, index, ctypes.byref(length))
    return pa.foreign_buffer(pointer, length.value, base=owner) if length.value else pa.py_buffer(b"")


def _array(owner: _Owner, field: int, kind: str, rows: int) -> pa.Array:
    """One field's column over the scanner's buffers; its validity bytes become Arrow's bitmap."""
    base = 2 + 4 * field
    valid = np.frombuffer(_buffer(owner, base), dtype=np.uint8)
    nulls = rows - int(np.count_nonzero(valid))
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None
    values = _buffer(owner, base + 1)
    if kind in ("number", "integer"):
        return pa.Array.from_buffers(_TYPES[kind], rows, [bitmap, values], null_count=nulls)
    data = _buffer(owner, base + 2)
    if kind == "string":
        return pa.Array.from_buffers(pa.string(), rows, [bitmap, values, data], null_count=nulls)
    items = _buffer(owner, base + 3)
    strings = pa.Array.from_buffers(pa.string(), items.size // 4 - 1, [None, items, data], null_count=0)
    return pa.Array.from_buffers(_TYPES[kind], rows, [bitmap, values], null_count=nulls, children=[strings])
