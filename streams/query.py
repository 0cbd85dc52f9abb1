"""Read-only SQL for users, shared by the worker's /query endpoint and the CLI.

The engine is the barrier. User SQL runs on a session of its own (its own chDB
connection handle, or its own HTTP client and user on a server) that was made
``readonly=1`` when it opened, after its limits were set. ClickHouse then
refuses, by itself: INSERT, DDL, SYSTEM, OPTIMIZE, the table functions that
reach outside (``file``, ``url``, ``s3``, ``remote``, ``executable``, ...;
generators such as ``numbers`` run), and any change of a setting, by ``SET``
or by a ``SETTINGS`` clause, so the limits cannot be lifted. The writer's
session is never touched by user SQL.

chDB's embedded (clickhouse-local) mode still lets some things past a
read-only session that a server would stop: the scalar ``file()`` function
reads any path, ``INTO OUTFILE`` writes one, ``KILL QUERY`` stops the worker's
own inserts, and ``DESCRIBE`` of a table function (``url``, ``remote``,
``sqlite``, ``python``) runs it. ``SHOW ... WHERE`` would get past the check
below, whose ``EXPLAIN AST`` leaves that ``WHERE`` out. So before a statement runs, ClickHouse's own parser looks at
it: ``formatQuerySingleLine`` turns it into one canonical statement (several
statements, or a syntax error, are refused there), and ``EXPLAIN AST`` of that
statement must have a SELECT at its root (or EXPLAIN of a SELECT) and no
``file`` function anywhere. The canonical statement is what runs. Tables and
columns are listed with SELECTs on ``system.tables`` and ``system.columns``.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from fleetpulse.clickhouse import ClickHouse, error_code
from fleetpulse.errors import FleetpulseError, QueryError
from fleetpulse.settings import Settings

#: Caps on what one query may read and return (besides its time and memory limits).
MAX_ROWS_TO_READ = 10_000_000_000
MAX_BYTES_TO_READ = 1024**4
MAX_RESULT_ROWS = 1_000_000
MAX_RESULT_BYTES = 512 * 1024**2
MAX_SQL_CHARS = 100_000

#: SELECT only (and EXPLAIN of one): the AST of SHOW omits its WHERE, and
#: DESCRIBE runs table functions that readonly refuses everywhere else.
_SELECT_ROOTS = {"SelectWithUnionQuery", "SelectIntersectExceptQuery"}
#: chDB's embedded mode lets this scalar function read any file, read-only or not.
_FILE_FUNCTION = re.compile(r"^\s*Function file(?: |$)")
_IN_SCOPE = re.compile(r"\.?:? In scope SELECT formatQuerySingleLine\(.*$", re.S)

#: ClickHouse error codes a user can act on, and what to tell them.
_LIMIT_HINTS = {
    159: "the query ran past its time limit (FLEETPULSE_QUERY_TIMEOUT_SECONDS={timeout})",
    241: "the query needed more memory than its limit (FLEETPULSE_QUERY_MAX_MEMORY_BYTES={memory})",
    158: "the query would read or return too many rows",
    307: "the query would read or return too many bytes",
    396: "the query would return more than {rows} rows or {bytes} bytes: add a LIMIT or aggregate",
    164: "refused: the query endpoint is read-only (SELECT or EXPLAIN SELECT; no SET, SETTINGS, or table "
         "functions that reach files, URLs or other servers)",
}


def session_settings(settings: Settings) -> dict[str, Any]:
    """The read-only session's settings, in the order they are applied: the
    limits first, then ``readonly``, which freezes them. None for a dedicated
    query user on a server: its settings profile holds them (docs/security.md),
    and a read-only user could not send them anyway."""
    if not settings.uses_chdb and settings.clickhouse_query_user:
        return {}
    session: dict[str, Any] = {
        "max_execution_time": settings.query_timeout_seconds,
        "timeout_overflow_mode": "throw",
        "max_memory_usage": settings.query_max_memory_bytes,
        "max_rows_to_read": MAX_ROWS_TO_READ,
        "max_bytes_to_read": MAX_BYTES_TO_READ,
        "read_overflow_mode": "throw",
        "max_result_rows": MAX_RESULT_ROWS,
        "max_result_bytes": MAX_RESULT_BYTES,
        "result_overflow_mode": "throw",
    }
    if settings.uses_chdb:
        session["max_threads"] = 1  # the worker's own process: one core stays free for ingestion
    session["readonly"] = 1
    return session


def open_reader(settings: Settings) -> ClickHouse:
    """A read-only session for user SQL (see the module docstring)."""
    return ClickHouse(settings, session=session_settings(settings), read_only=True)


def run_query(reader: ClickHouse, sql: str) -> tuple[list[str], list[tuple]]:
    """Columns and rows of one read-only statement, or QueryError with a one-line reason."""
    if not reader.read_only:
        raise QueryError("user SQL must run on a read-only session (open_reader)")
    statement = canonical_statement(reader, sql)
    try:
        result = reader.query(statement)
    except FleetpulseError as exc:
        raise QueryError(_explain(exc, reader)) from exc
    except RecursionError:  # the driver parses the result's type recursively: Array(Array(...)) 300 deep
        raise QueryError("the result's type is nested too deeply to read") from None
    return list(result.column_names), list(result.result_rows)


def canonical_statement(reader: ClickHouse, sql: str) -> str:
    """The statement as ClickHouse's parser reads it, if it only reads; QueryError if not."""
    if not isinstance(sql, str) or not sql.strip():
        raise QueryError("empty query: send {\"sql\": \"SELECT ...\"}")
    if len(sql) > MAX_SQL_CHARS:
        raise QueryError(f"the query is {len(sql)} characters long; the limit is {MAX_SQL_CHARS}")
    try:
        statement = reader.query("SELECT formatQuerySingleLine({sql:String})",
                                 parameters={"sql": sql.strip().rstrip(";")}).result_rows[0][0]
        tree = [row[0] for row in reader.query(f"EXPLAIN AST {statement}").result_rows]
    except FleetpulseError as exc:
        raise QueryError(_explain(exc, reader)) from exc
    check_tree(statement, tree)
    return statement


def check_tree(statement: str, tree: list[str]) -> None:
    """Refuse what the read-only session would let through (see the module docstring).

    ``statement`` is ClickHouse's canonical one-line form, ``tree`` the lines of
    its ``EXPLAIN AST``."""
    root = tree[0].split()[0] if tree else ""
    if root not in _SELECT_ROOTS | {"Explain"}:
        kind = " ".join(statement.split()[:2]) if statement else "?"
        raise QueryError(f"{kind} ... is refused: the query endpoint runs SELECT (or EXPLAIN SELECT) only; "
                         "list tables and columns with SELECT ... FROM system.tables / system.columns")
    if root == "Explain":
        children = [line.strip().split()[0] for line in tree[1:] if re.match(r"^ \S", line)]
        explained = next((c for c in children if c != "Set"), "")
        if explained not in _SELECT_ROOTS:
            raise QueryError("EXPLAIN is allowed for SELECT only")
    if " INTO OUTFILE " in statement:
        raise QueryError("INTO OUTFILE is refused: the answer comes back over HTTP as JSON lines")
    if " FORMAT " in statement:
        raise QueryError("FORMAT is refused: the answer always comes back as JSON lines")
    if any(_FILE_FUNCTION.match(line) for line in tree):
        raise QueryError("the file() function is refused: the query endpoint reads fleetpulse's tables only")


def _explain(exc: FleetpulseError, reader: ClickHouse) -> str:
    message = _IN_SCOPE.sub("", str(exc))
    s = reader.settings
    hint = _LIMIT_HINTS.get(error_code(message) or 0)
    if hint:
        return hint.format(timeout=s.query_timeout_seconds, memory=s.query_max_memory_bytes,
                           rows=MAX_RESULT_ROWS, bytes=MAX_RESULT_BYTES) + f" ({message})"
    if "UNKNOWN_TABLE" in message or "Unknown table" in message or "UNKNOWN_DATABASE" in message:
        return (f"{message} -- is this the right database ({reader.where}, {s.clickhouse_database})? "
                "Run `fleetpulse migrate` or start the worker to create the tables.")
    return message


def to_json_lines(columns: list[str], rows: list[tuple]) -> bytes:
    """One JSON object per row. NaN becomes null; datetimes are UTC with a Z;
    decimals, IPs and integers past 64 bits become strings, and so do map keys
    that are not strings (a tuple, an IP)."""
    lines = []
    for row in rows:
        item = dict(zip(columns, row))
        try:
            lines.append(orjson.dumps(item, option=_JSON, default=str))
        except (orjson.JSONEncodeError, TypeError):  # keys orjson cannot write, ints past 64 bits
            lines.append(orjson.dumps(_plain(item), option=_JSON, default=str))
    return b"".join(line + b"\n" for line in lines)


_JSON = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z


def _plain(value: object) -> object:
    """``value`` with every map key a string and every integer past 64 bits a string."""
    if isinstance(value, dict):
        return {k if isinstance(k, str) else str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return str(value)
    return value
