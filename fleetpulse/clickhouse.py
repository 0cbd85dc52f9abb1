"""The one way fleetpulse talks to ClickHouse: clickhouse-connect, over HTTP or chDB.

``chdb://PATH`` is the embedded default (the real ClickHouse engine in-process);
``http(s)://HOST:PORT`` is a ClickHouse server. Driver errors become
ClickHouseUnavailable (retry later: backpressure) or ClickHouseError (a bug or
a bad statement) here, at the boundary.
"""

from __future__ import annotations

import re
import threading
import urllib.parse
from pathlib import Path
from typing import Any, Sequence

import clickhouse_connect
from clickhouse_connect.driver import exceptions as ch_exc

from fleetpulse.errors import ClickHouseError, ClickHouseUnavailable, FleetpulseError
from fleetpulse.settings import Settings


def _chdb_path(url: str) -> Path:
    return Path(url[len("chdb://"):]).expanduser().resolve()


def describe(settings: Settings) -> str:
    """Where ClickHouse is, for messages: never includes the password."""
    if settings.uses_chdb:
        return f"chDB at {_chdb_path(settings.clickhouse_url)}"
    parts = urllib.parse.urlsplit(settings.clickhouse_url)
    return f"ClickHouse at {parts.scheme}://{parts.hostname}:{parts.port or ''}"


def _idempotent(dedup_token: str) -> dict[str, Any]:
    """Settings of an insert that ClickHouse drops when ``dedup_token`` was seen
    before, together with the blocks the table's materialized views make of it:
    without the second setting they are inserted again, and the rollups counted
    a retried batch twice (sql/020)."""
    return {"insert_deduplication_token": dedup_token, "deduplicate_blocks_in_dependent_materialized_views": 1}


class ClickHouse:
    """A thread-safe wrapper around one session: calls on it run one at a time.

    ``session`` holds settings fixed for the session's lifetime, in order. With
    ``readonly`` among them the session is read-only for good: ClickHouse then
    refuses writes, table functions and any later change of a setting, so a
    statement sent through it cannot undo its limits (see streams/worker/query.py).
    ``read_only`` marks a session for user SQL: it creates nothing, and on a
    server it logs in as FLEETPULSE_CLICKHOUSE_QUERY_USER when one is set.
    Each session is its own chDB connection handle (or HTTP client), so one
    never sees another's state, and a read on it runs beside the writer's.
    """

    def __init__(self, settings: Settings, session: dict[str, Any] | None = None, read_only: bool = False):
        self.settings = settings
        self.where = describe(settings)
        self.read_only = read_only
        self._lock = threading.Lock()
        self._session = session or {}
        self._client = self._connect(self._session)

    def _connect(self, session: dict[str, Any]) -> Any:
        s = self.settings
        user, password = s.clickhouse_user, s.clickhouse_password
        if self.read_only and s.clickhouse_query_user:
            user, password = s.clickhouse_query_user, s.clickhouse_query_password
        try:
            if s.uses_chdb:
                path = _chdb_path(s.clickhouse_url)
                path.parent.mkdir(parents=True, exist_ok=True)
                client = clickhouse_connect.get_client(dsn=f"chdb://{path}", settings=session)
            else:
                parts = urllib.parse.urlsplit(s.clickhouse_url)
                client = clickhouse_connect.get_client(
                    host=parts.hostname, port=parts.port or (8443 if parts.scheme == "https" else 8123),
                    secure=parts.scheme == "https", username=user, password=password.reveal(),
                    connect_timeout=5, send_receive_timeout=60, settings=session,
                )
            if not self.read_only:
                client.command(f"CREATE DATABASE IF NOT EXISTS {s.clickhouse_database}")
            client.database = s.clickhouse_database
            return client
        except ch_exc.ProgrammingError as exc:
            if s.uses_chdb and "open the chdb engine" in str(exc):
                raise ClickHouseError(
                    f"{self.where} is open in another process (a running `fleetpulse worker`?). "
                    "Only one process can open a chDB path: query through the worker, or stop it first."
                ) from exc
            raise ClickHouseError(f"{self.where}: {_first_line(exc)}") from exc
        except ch_exc.OperationalError as exc:
            raise ClickHouseUnavailable(
                f"{self.where} is not reachable ({_cause(exc)}). Check FLEETPULSE_CLICKHOUSE_URL."
            ) from exc
        except ch_exc.DatabaseError as exc:
            raise ClickHouseError(f"{self.where}: {_first_line(exc)}") from exc

    def command(self, sql: str, settings: dict | None = None, parameters: dict | None = None) -> Any:
        return self._call(self._client.command, sql, parameters=parameters, settings=settings)

    def query(self, sql: str, settings: dict | None = None, parameters: dict | None = None) -> Any:
        return self._call(self._read_all, sql, parameters=parameters, settings=settings)

    def raw_query(self, sql: str, fmt: str) -> bytes:
        """The whole answer in ClickHouse's output format ``fmt``."""
        return self._call(self._client.raw_query, sql, fmt=fmt)

    def _read_all(self, sql: str, **kwargs: Any) -> Any:
        result = self._client.query(sql, **kwargs)
        # The whole answer, inside the lock: a failure while rows stream in is
        # raised here (and becomes ours), and no half-read stream stays open
        # on the session to feed the next query its leftover rows.
        result.result_rows
        return result

    def insert(self, table: str, rows: Sequence[Sequence], columns: Sequence[str], dedup_token: str) -> None:
        """Insert idempotently: ClickHouse drops a repeat of the same ``dedup_token``."""
        if rows:
            self._call(self._client.insert, table, rows, column_names=list(columns),
                       settings=_idempotent(dedup_token))

    def insert_native(self, table: str, columns: Sequence[str], block: bytes, dedup_token: str) -> None:
        """Insert one block already in ClickHouse's Native format, idempotently."""
        self._call(self._client.raw_insert, table, list(columns), insert_block=block, fmt="Native",
                   settings=_idempotent(dedup_token))

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            try:
                return fn(*args, **kwargs)
            except ch_exc.ClickHouseError as exc:
                if self.read_only:
                    self._reopen()  # a failed stream can leave its rest on the session
                raise ours(exc, self.where) from exc
            except Exception:  # the driver failed reading the answer (a type nested too deeply, ...)
                if self.read_only:
                    self._reopen()
                raise

    def _reopen(self) -> None:
        try:
            self._client.close()
        except ch_exc.ClickHouseError:
            pass  # closing a broken session: nothing to save
        try:
            self._client = self._connect(self._session)
        except FleetpulseError:
            pass  # the next call fails on the closed client and tries again

    def close(self) -> None:
        # A call stuck inside the engine holds the lock: then the session is left to it.
        if self._lock.acquire(timeout=5):
            try:
                self._client.close()
            finally:
                self._lock.release()


#: Server errors that pass: too many parts, memory or time limits, read-only
#: replica, too many queries, socket timeouts, network errors.
RETRYABLE_CODES = {159, 202, 209, 210, 241, 242, 252}
#: Errors under a retryable code that the same statement gets again however
#: long it waits, so retrying would stall ingestion for good: ClickHouse also
#: raises TOO_MANY_PARTS (252) for an INSERT block spanning more partitions
#: than max_partitions_per_insert_block, and MEMORY_LIMIT_EXCEEDED (241) for a
#: statement over its own per-query limit (the server's total and the user's
#: limits depend on what else runs: those pass). Both wordings of each, old
#: servers' and new.
_NEVER_PASSES = re.compile(r"Too many partitions for single INSERT block"
                           r"|Query memory limit exceeded|Memory limit \(for query\) exceeded")
_CODE = re.compile(r"Code: (\d+)")
_QUERY_ID = re.compile(r"\s*\(?query_id[:=]\s*[\w-]+\)?", re.I)


def ours(exc: Exception, where: str) -> Exception:
    """A driver error as ours: ClickHouseUnavailable only when waiting can fix it."""
    code = error_code(exc)
    if _NEVER_PASSES.search(str(exc)):  # first: it can come under any exception class
        return ClickHouseError(f"{where}: {_first_line(exc)}")
    if isinstance(exc, ch_exc.StreamFailureError) and code not in RETRYABLE_CODES:
        return ClickHouseError(f"{where}: {_first_line(exc)}")
    if isinstance(exc, ch_exc.OperationalError):
        return ClickHouseUnavailable(f"{where} is not reachable ({_cause(exc)})")
    if code in RETRYABLE_CODES:
        return ClickHouseUnavailable(f"{where} is overloaded: {_first_line(exc)}")
    return ClickHouseError(f"{where}: {_first_line(exc)}")


def error_code(exc: BaseException) -> int | None:
    match = _CODE.search(str(exc))
    return int(match[1]) if match else None


_CAUSES = (("Connection refused", "connection refused"), ("Name or service not known", "unknown host"),
           ("nodename nor servname", "unknown host"), ("timed out", "timed out"),
           ("Authentication failed", "authentication failed"))


def _cause(exc: BaseException) -> str:
    """Why a connection failed, in two words when we can tell."""
    text = str(exc)
    for needle, cause in _CAUSES:
        if needle in text:
            return cause
    return _first_line(exc)[:200]


def _first_line(exc: BaseException) -> str:
    """The first line of a driver error, without the query id: a person reads it."""
    text = _QUERY_ID.sub("", str(exc)).strip()
    return text.splitlines()[0] if text else type(exc).__name__
