"""ClickHouse Native encoding from arrays (the full round trip through chDB is
tests/integration/test_sql.py::test_a_native_block_stores_exactly_what_row_inserts_store)."""

import numpy as np

from fleetpulse.streams.windows.native import block, leb128, strings


def test_leb128_matches_the_varint_encoding():
    assert leb128(0) == b"\x00" and leb128(127) == b"\x7f"
    assert leb128(128) == b"\x80\x01" and leb128(300) == b"\xac\x02"
    assert leb128(2**35) == b"\x80\x80\x80\x80\x80\x01"


def test_strings_are_length_prefixed_utf8_per_row():
    values = ["a", "é", None]
    assert strings(values, np.array([1, 0, 1, 2])) == b"\x02\xc3\xa9" + b"\x01a" + b"\x02\xc3\xa9" + b"\x00"


def test_a_block_names_and_types_each_column():
    data = np.array([1, 2], dtype="<u8").tobytes()
    assert block([("n", "UInt64", data)], 2) == b"\x01\x02" + b"\x01n" + b"\x06UInt64" + data
