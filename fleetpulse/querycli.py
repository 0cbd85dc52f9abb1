"""``fleetpulse query``: run read-only SQL wherever the data is reachable.

With chDB only one process may open the path, and while a worker runs it is
that process, so the query goes to the worker's /query endpoint. With no
worker running, the CLI opens chDB itself. A ClickHouse server is queried
directly.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from typing import Iterable

from fleetpulse.clickhouse import ClickHouse
from fleetpulse.errors import QueryError
from fleetpulse.settings import Settings, is_wildcard
from fleetpulse.streams.worker.query import open_reader, run_query


def query_json_lines(settings: Settings, sql: str) -> bytes:
    if settings.uses_chdb:
        answer = ask_worker(settings, "/query", {"sql": sql})
        if answer is not None:
            return answer
    reader = open_reader(settings)
    try:
        return run_query(reader, sql)
    finally:
        reader.close()


def silence_anywhere(settings: Settings, request: dict) -> dict:
    """A silence request (see streams/alerting/silences.py)."""
    from fleetpulse.streams.alerting.silences import handle

    return _worker_or_direct(settings, "/silences", request, lambda ch, reader: handle(ch, request))


def build_baseline_anywhere(settings: Settings, model: str, start: float, end: float,
                            features: list[str] | None) -> dict:
    from fleetpulse.streams.drift.baselines import handle_baseline

    body = {"model": model, "from": start, "to": end, "features": features}
    return _worker_or_direct(settings, "/drift/baseline", body,
                             lambda ch, reader: handle_baseline(ch, reader, settings, body))


def _worker_or_direct(settings: Settings, path: str, body: dict, direct) -> dict:
    """Through the worker's endpoint when it holds chDB; else on ClickHouse directly."""
    if settings.uses_chdb:
        answer = ask_worker(settings, path, body)
        if answer is not None:
            return json.loads(answer)
    from fleetpulse.migrate import migrate

    ch = ClickHouse(settings)
    try:
        migrate(ch, log=lambda _: None)
        reader = open_reader(settings)
        try:
            return direct(ch, reader)
        finally:
            reader.close()
    finally:
        ch.close()


def ask_worker(settings: Settings, path: str, body: dict, timeout: float = 120) -> bytes | None:
    """The worker's answer to a POST of ``body`` as JSON, with the token when one
    is set; None when no worker listens on FLEETPULSE_HTTP_PORT."""
    request = worker_request(settings, path, body)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        answer = exc.read()
        try:
            message = json.loads(answer)["error"]
        except (ValueError, KeyError, TypeError):
            message = answer.decode(errors="replace")[:500]
        if exc.code == 401:
            message += " (set FLEETPULSE_HTTP_TOKEN to the worker's token)"
        raise QueryError(message) from exc
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def worker_request(settings: Settings, path: str, body: dict | None = None) -> urllib.request.Request:
    """A request to the worker on FLEETPULSE_HTTP_HOST/PORT, with the bearer
    token when one is set: POST ``body`` as JSON, or GET when there is none."""
    host = "127.0.0.1" if is_wildcard(settings.http_host) else settings.http_host
    host = f"[{host}]" if ":" in host else host
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if settings.http_token:
        headers["Authorization"] = f"Bearer {settings.http_token.reveal()}"
    return urllib.request.Request(f"http://{host}:{settings.http_port}{path}", headers=headers,
                                  data=None if body is None else json.dumps(body).encode(),
                                  method="GET" if body is None else "POST")


def format_table(lines: bytes) -> str:
    rows = [json.loads(line) for line in lines.splitlines() if line.strip()]  # json: integers past 64 bits
    if not rows:
        return "(no rows)"
    columns = list(rows[0])
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    out = [_line(columns, widths), _line(["-" * w for w in widths], widths)]
    out += [_line(r, widths) for r in cells]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)


def _cell(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def _line(cells: Iterable[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
