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

from fleetpulse.clickhouse import ClickHouse, error_code
from fleetpulse.errors import FleetpulseError, QueryError
from fleetpulse.settings import Settings

#: Caps on what one query may read and return (besides its time and memory limits).
MAX_ROWS_TO_READ = 10_000_000_000
MAX_BYTES_TO_READ = 1024**4
MAX_RESULT_ROWS = 1_000_000
MAX_RESULT_BYTES = 256 * 1024**2
MAX_SQL_CHARS = 100_000

#: SELECT only (and EXPLAIN of one): the AST of SHOW omits its WHERE, and
#: DESCRIBE runs table functions that readonly refuses everywhere else.
_SELECT_ROOTS = {"SelectWithUnionQuery", "SelectIntersectExceptQuery"}
#: The AST nodes of SELECTs whose EXPLAIN AST shows every expression under
#: them, found by probing each with a file() call inside. A node not listed is
#: refused: it might hide a call, as APPLY does (it names its function as a
#: string, so `* APPLY file` read any file past the check).
_KNOWN_NODES = {
    "SelectWithUnionQuery", "SelectIntersectExceptQuery", "SelectQuery", "Subquery", "WithElement", "Explain", "Set",
    "ExpressionList", "Function", "Identifier", "Literal", "Asterisk", "QualifiedAsterisk", "ColumnsRegexpMatcher",
    "ColumnsListMatcher", "ColumnsTransformerList", "ColumnsExceptTransformer", "ColumnsReplaceTransformer",
    "ColumnsReplaceTransformer::Replacement", "TablesInSelectQuery", "TablesInSelectQueryElement", "TableExpression",
    "TableIdentifier", "TableJoin", "ArrayJoin", "SampleRatio", "OrderByElement", "InterpolateElement",
    "WindowDefinition", "WindowListElement",
}
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
        "allow_introspection_functions": 0,
        # The answer is written by the engine as JSON lines (no Python object per
        # value: a result of many small tuples cost 75x its size as Python rows):
        "output_format_json_quote_64bit_integers": 0,  # counts as numbers
        "output_format_json_quote_denormals": 0,  # NaN and inf as null
        "date_time_output_format": "iso",  # 2026-12-01T05:00:00Z
    }
    if settings.uses_chdb:
        session["max_threads"] = 1  # the worker's own process: one core stays free for ingestion
    session["readonly"] = 1
    return session


def open_reader(settings: Settings) -> ClickHouse:
    """A read-only session for user SQL (see the module docstring)."""
    return ClickHouse(settings, session=session_settings(settings), read_only=True)


def run_query(reader: ClickHouse, sql: str) -> bytes:
    """The rows of one read-only statement as JSON lines, written by ClickHouse
    (JSONEachRow), or QueryError with a one-line reason."""
    if not reader.read_only:
        raise QueryError("user SQL must run on a read-only session (open_reader)")
    statement = canonical_statement(reader, sql)
    try:
        return reader.raw_query(statement, "JSONEachRow")
    except FleetpulseError as exc:
        raise QueryError(_explain(exc, reader)) from exc


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
    nodes = {line.split()[0] for line in tree if line.strip()}
    if "ColumnsApplyTransformer" in nodes:
        raise QueryError("APPLY is refused: it calls a function by name, out of the check's sight; "
                         "write the call out, e.g. SELECT toString(x) instead of SELECT * APPLY toString")
    unknown = sorted(nodes - _KNOWN_NODES)
    if unknown:
        raise QueryError(f"{', '.join(unknown)} is not supported by the query endpoint")
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
