"""Read-only SQL for users, shared by the worker's /query endpoint and the CLI.

Only one statement that reads is let through: SELECT, WITH, SHOW, DESCRIBE,
EXPLAIN or EXISTS. The check is on the text, before ClickHouse sees it, because
chDB applies per-query settings to its one session: a ``readonly`` setting
would stick to the session the worker writes through. On a server, ClickHouse's
own ``readonly=1`` is sent as well.
"""

from __future__ import annotations

import re

import orjson

from fleetpulse.clickhouse import ClickHouse
from fleetpulse.errors import ClickHouseError, QueryError

LIMITS = {"max_result_rows": 1_000_000, "result_overflow_mode": "throw", "max_execution_time": 60}
_READS = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS")
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`(?:[^`\\]|\\.)*`", re.S)


def check_read_only(sql: str) -> str:
    """The statement without a trailing ';', or QueryError saying why it is refused."""
    text = _COMMENTS.sub(" ", sql).strip().rstrip(";").strip()
    if not text:
        raise QueryError("empty query")
    bare = _QUOTED.sub("''", text)
    if ";" in bare:
        raise QueryError("one statement at a time, please")
    first = bare.split(None, 1)[0].upper()
    if first not in _READS:
        raise QueryError(f"{first} is refused: the query endpoint is read-only ({', '.join(_READS)})")
    if re.search(r"\bINTO\s+OUTFILE\b", bare, re.I):
        raise QueryError("INTO OUTFILE is refused: the query endpoint is read-only")
    return text


def run_query(ch: ClickHouse, sql: str) -> tuple[list[str], list[tuple]]:
    statement = check_read_only(sql)
    settings = dict(LIMITS) if ch.settings.uses_chdb else {**LIMITS, "readonly": 1}
    try:
        result = ch.query(statement, settings=settings)
    except ClickHouseError as exc:
        raise QueryError(_hint(str(exc), ch)) from exc
    return list(result.column_names), list(result.result_rows)


def _hint(message: str, ch: ClickHouse) -> str:
    if "UNKNOWN_TABLE" in message or "Unknown table" in message:
        return (f"{message} -- is this the right database ({ch.where}, {ch.settings.clickhouse_database})? "
                "Run `fleetpulse migrate` or start the worker to create the tables.")
    return message


def to_json_lines(columns: list[str], rows: list[tuple]) -> bytes:
    """One JSON object per row. NaN becomes null; map keys become strings;
    datetimes are UTC with a Z; decimals, IPs and big ints become strings."""
    opts = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z
    return b"".join(orjson.dumps(dict(zip(columns, row)), option=opts, default=str) + b"\n" for row in rows)
