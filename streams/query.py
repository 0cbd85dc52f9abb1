"""Read-only SQL for users, shared by the worker's /query endpoint and the CLI."""

from __future__ import annotations

import orjson

from fleetpulse.clickhouse import ClickHouse
from fleetpulse.errors import ClickHouseError, QueryError

#: readonly=1 lets ClickHouse itself refuse writes and DDL, whatever the text says.
READ_ONLY = {"readonly": 1, "max_result_rows": 1_000_000, "result_overflow_mode": "throw"}


def run_query(ch: ClickHouse, sql: str) -> tuple[list[str], list[tuple]]:
    if not sql.strip():
        raise QueryError("empty query")
    try:
        result = ch.query(sql, settings=READ_ONLY)
    except ClickHouseError as exc:
        raise QueryError(str(exc)) from exc
    return list(result.column_names), list(result.result_rows)


def to_json_lines(columns: list[str], rows: list[tuple]) -> bytes:
    """One JSON object per row. NaN becomes null; map keys become strings."""
    opts = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
    return b"".join(orjson.dumps(dict(zip(columns, row)), option=opts) + b"\n" for row in rows)
