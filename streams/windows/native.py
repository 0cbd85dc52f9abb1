"""ClickHouse's Native format, written from numpy arrays (pure).

A batch's window rows go to ClickHouse as one Native block built column by
column: numbers as little-endian arrays (``tobytes``), strings from the
encoding of each distinct value, and each Map as its offsets, keys and values,
which is exactly the (group, key, count) layout the aggregation produces. No
Python runs per row or per map entry, where clickhouse-connect's row inserts
build and walk a dict per map per row.

Column types are the plain ones (String for LowCardinality(String), DateTime
for DateTime('UTC')): ClickHouse converts a Native block to the table's types
on insert (``input_format_native_allow_types_conversion``, on by default).
"""

from __future__ import annotations

import numpy as np

from fleetpulse.streams.windows.aggregate import SparseMaps


def leb128(n: int) -> bytes:
    """An unsigned LEB128 varint: Native's lengths and counts."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def strings(values: list[str], codes: np.ndarray) -> bytes:
    """A String column: row i holds ``values[codes[i]]``; each distinct value is
    encoded once. A None among ``values`` (the error type of a success, which
    no map entry refers to) is encoded as the empty string."""
    encoded = [(_SHORT[len(b)] if len(b) < 128 else leb128(len(b))) + b
               for b in (("" if v is None else v).encode() for v in values)]
    return b"".join(map(encoded.__getitem__, codes.tolist()))


#: The LEB128 of each length below 128: one byte, the length itself.
_SHORT = [bytes((n,)) for n in range(128)]


def numbers(values: np.ndarray, dtype: str) -> bytes:
    return np.ascontiguousarray(values, dtype=dtype).tobytes()


def int16_map(maps: SparseMaps) -> bytes:
    """Map(Int16, UInt64): offsets, keys, values."""
    return numbers(maps.ends, "<u8") + numbers(maps.labels[maps.keys], "<i2") + numbers(maps.counts, "<u8")


def string_map(maps: SparseMaps) -> bytes:
    """Map(String, UInt64): offsets, keys, values."""
    return numbers(maps.ends, "<u8") + strings(list(maps.labels), maps.keys) + numbers(maps.counts, "<u8")


def block(columns: list[tuple[str, str, bytes]], rows: int) -> bytes:
    """One Native block of (name, type, encoded data) columns."""
    out = [leb128(len(columns)), leb128(rows)]
    for name, kind, data in columns:
        out += [leb128(len(name.encode())), name.encode(), leb128(len(kind)), kind.encode(), data]
    return b"".join(out)
