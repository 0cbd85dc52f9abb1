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

from fleetpulse.errors import ClickHouseError, ClickHouseUnavailable
from fleetpulse.settings import Settings


def _chdb_path(url: str) -> Path:
    return Path(url[len("chdb://"):]).expanduser().resolve()


def describe(settings: Settings) -> str:
    """Where ClickHouse is, for messages: never includes the password."""
    if settings.uses_chdb:
        return f"chDB at {_chdb_path(settings.clickhouse_url)}"
    parts = urllib.parse.urlsplit(settings.clickhouse_url)
    return f"ClickHouse at {parts.scheme}://{parts.hostname}:{parts.port or ''}"


class ClickHouse:
    """A thread-safe wrapper: chDB allows one query at a time per process."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.where = describe(settings)
        self._lock = threading.Lock()
        self._client = self._connect()

    def _connect(self) -> Any:
        s = self.settings
        try:
            if s.uses_chdb:
                path = _chdb_path(s.clickhouse_url)
                path.parent.mkdir(parents=True, exist_ok=True)
                client = clickhouse_connect.get_client(dsn=f"chdb://{path}")
            else:
                parts = urllib.parse.urlsplit(s.clickhouse_url)
                client = clickhouse_connect.get_client(
                    host=parts.hostname, port=parts.port or (8443 if parts.scheme == "https" else 8123),
                    secure=parts.scheme == "https", username=s.clickhouse_user,
                    password=s.clickhouse_password.reveal(), connect_timeout=5, send_receive_timeout=60,
                )
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
        return self._call(self._client.query, sql, parameters=parameters, settings=settings)

    def insert(self, table: str, rows: Sequence[Sequence], columns: Sequence[str], dedup_token: str) -> None:
        """Insert idempotently: ClickHouse drops a repeat of the same ``dedup_token``."""
        if rows:
            self._call(self._client.insert, table, rows, column_names=list(columns),
                       settings={"insert_deduplication_token": dedup_token})

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            try:
                return fn(*args, **kwargs)
            except ch_exc.OperationalError as exc:
                raise ClickHouseUnavailable(f"{self.where} is not reachable ({_cause(exc)})") from exc
            except ch_exc.ClickHouseError as exc:
                if _error_code(exc) in RETRYABLE_CODES:
                    raise ClickHouseUnavailable(f"{self.where} is overloaded: {_first_line(exc)}") from exc
                raise ClickHouseError(f"{self.where}: {_first_line(exc)}") from exc

    def close(self) -> None:
        with self._lock:
            self._client.close()


#: Server errors that pass: too many parts, memory or time limits, read-only
#: replica, too many queries, socket timeouts, network errors.
RETRYABLE_CODES = {159, 202, 209, 210, 241, 242, 252}
_CODE = re.compile(r"Code: (\d+)")
_QUERY_ID = re.compile(r"\s*\(?query_id[:=]\s*[\w-]+\)?", re.I)


def _error_code(exc: BaseException) -> int | None:
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
