"""The worker's HTTP surface, a security boundary (docs/security.md).

    GET  /metrics          open: Prometheus scrapes it
    GET  /health           open: ok, or 503 with the reason ingestion is stalled
    GET  /, /d/<name>, /static/<file>, /api/dashboards
                           open: the built-in pages and the catalogue (no data)
    GET  /api/panels/<name>?from=&to=&model=..., /api/variables/<name>?from=&to=
                           the pages' data: a named panel's rows (streams/worker/pages.py)
    POST /query            {"sql": "SELECT ..."}: read-only SQL, answers JSON lines
    POST /silences         {"action": "add"|"list"|"expire", ...}
    POST /drift/baseline   {"model", "from", "to", "features"?}

Every request passes :func:`refusal` first (an aiohttp middleware): a path we
do not serve is 404, whatever faust would add; the Host header must name this
worker (a DNS-rebinding page cannot read answers); a cross-site Origin is
refused; the guarded endpoints take POST with ``application/json`` only (a
form or ``<img>`` on a foreign page cannot reach them, and a script must pass
a CORS preflight it never gets) and, when FLEETPULSE_HTTP_TOKEN is set, a
bearer token. The pages' data endpoints are read with GET (a page's fetch),
under the same Host, Origin and token rules as /query. Bad bodies get 400 with one line; nothing answers a traceback.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import logging
import re
from typing import Callable, Mapping

import faust
import faust.web
import orjson
from aiohttp import web as aioweb
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from fleetpulse.clickhouse import ClickHouse
from fleetpulse.errors import ClickHouseUnavailable, FleetpulseError, RequestError
from fleetpulse.settings import Settings, is_wildcard
from fleetpulse.streams.alerting import silences
from fleetpulse.streams.drift.baselines import handle_baseline
from fleetpulse.streams.prometheus.pipeline import PipelineMetrics
from fleetpulse.streams.worker.pages import add_dashboard_pages
from fleetpulse.streams.worker.offload import ABANDON_AFTER_S, in_daemon_thread
from fleetpulse.streams.worker.query import open_reader, run_query
from fleetpulse.streams.worker.stall import StallWatch

log = logging.getLogger("fleetpulse.worker")

OPEN = frozenset({"/metrics", "/health", "/", "/api/dashboards"})
OPEN_PREFIXES = ("/d/", "/static/")
GUARDED = frozenset({"/query", "/silences", "/drift/baseline"})
READ_PREFIXES = ("/api/panels/", "/api/variables/")  # GET, guarded like /query
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})



def exposition(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """/metrics' body and Content-Type for a request's Accept header, as
    prometheus_client negotiates them: OpenMetrics when the scraper asks for it
    (Prometheus does; it carries the exemplars), else the text format."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


@dataclasses.dataclass(frozen=True)
class Policy:
    """Who may call what. ``hosts`` None: any Host (a wildcard bind, which
    requires a token, and the token is what a rebinding page lacks)."""

    token: str
    hosts: frozenset[str] | None

    @classmethod
    def from_settings(cls, settings: Settings) -> "Policy":
        host = settings.http_host.strip("[]").lower()
        hosts = None if is_wildcard(host) else LOOPBACK_NAMES | {host}
        return cls(settings.http_token.reveal(), hosts)


def refusal(policy: Policy, method: str, path: str, headers: Mapping[str, str]) -> tuple[int, str] | None:
    """(status, reason) when the request must be refused before any handler runs; None to let it through."""
    kind = _kind(path)
    if kind is None:
        return 404, (f"no such endpoint: {path[:100]} (see /, /metrics, /health, /query, /silences, "
                     "/drift/baseline, /api/dashboards, /api/panels/<name>)")
    host = headers.get("Host", "")
    if not host:
        return 400, "the Host header is missing"
    if policy.hosts is not None and _hostname(host) not in policy.hosts:
        return 403, f"Host {host[:100]!r} is not this worker's address (FLEETPULSE_HTTP_HOST)"
    origin = headers.get("Origin")
    if origin is not None and origin.lower() not in (f"http://{host}".lower(), f"https://{host}".lower()):
        return 403, "cross-origin requests are refused"
    if headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
        return 403, "cross-site requests are refused"
    if kind != "change":
        if method not in ("GET", "HEAD"):
            return 405, f"{path[:100]} takes GET"
        if kind == "open":
            return None
    elif method != "POST":
        return 405, f"{path} takes POST with a JSON body"
    if policy.token and not _bearer_matches(headers.get("Authorization", ""), policy.token):
        return 401, "a bearer token is required: send 'Authorization: Bearer <FLEETPULSE_HTTP_TOKEN>'"
    if kind == "read":
        return None
    if headers.get("Content-Type", "").split(";")[0].strip().lower() != "application/json":
        return 415, f"{path} takes Content-Type: application/json"
    return None


def _kind(path: str) -> str | None:
    """open (no data), read (GET, guarded), change (POST, guarded), or None: not ours."""
    if path in OPEN or (path.startswith(OPEN_PREFIXES) and path.count("/") == 2):
        return "open"
    if path.startswith(READ_PREFIXES) and path.count("/") == 3:
        return "read"
    return "change" if path in GUARDED else None


def _hostname(host: str) -> str:
    """The Host header without its port: ``[::1]:6066`` -> ``::1``; "" when it is malformed."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        rest = host[end + 1:] if end > 0 else "?"
        return host[1:end] if not rest or _PORT.fullmatch(rest) else ""
    name, colon, port = host.rpartition(":") if ":" in host else (host, "", "")
    if colon and (":" in name or not port.isdigit()):
        return ""
    return name


_PORT = re.compile(r":\d{1,5}")


def _bearer_matches(header: str, token: str) -> bool:
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def guard_middleware(policy: Policy) -> Callable:
    @aioweb.middleware
    async def guard(request: aioweb.Request, handler):
        refused = refusal(policy, request.method, request.path, request.headers)
        if refused:
            status, reason = refused
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            return aioweb.json_response({"error": reason}, status=status, headers=headers)
        try:
            return await handler(request)
        except aioweb.HTTPException as exc:  # aiohttp's own answers: 413 for a body over 1 MiB, ...
            if exc.status < 400:
                raise
            reason = (exc.text or exc.reason).splitlines()[0] if (exc.text or exc.reason) else str(exc.status)
            return aioweb.json_response({"error": reason}, status=exc.status)
        except Exception:  # noqa: BLE001 -- logged here; the client gets one line, never a traceback
            log.exception("%s %s failed", request.method, request.path)
            return aioweb.json_response({"error": "internal error; the worker's log has the details"}, status=500)
    return guard


def web_options(settings: Settings) -> dict:
    """faust settings for its web server: bounded connections (streams/worker/webserver.py),
    our guard, bodies up to 1 MiB, none of faust's own pages."""
    return {
        "web": "fleetpulse://",
        "web_application_options": {"middlewares": [guard_middleware(Policy.from_settings(settings))],
                                    "client_max_size": 1024**2},
        "web_router_enabled": False, "web_tables_enabled": False,
        "web_graph_enabled": False, "web_stats_enabled": False,
    }


async def _json_body(request) -> object:
    try:
        return orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise RequestError(f"the body is not valid JSON: {exc}") from None


def add_pages(app: faust.App, ch: ClickHouse, reader: ClickHouse, metrics: PipelineMetrics,
              stalls: StallWatch, settings: Settings) -> None:
    loop = asyncio.get_running_loop
    add_dashboard_pages(app, settings)

    @app.page("/metrics")
    async def metrics_page(web, request):
        body, content_type = exposition(metrics.registry, request.headers.get("Accept"))
        # As a header: aiohttp's content_type argument refuses parameters such as charset.
        return web.bytes(body, headers={"Content-Type": content_type})

    @app.page("/health")
    async def health_page(web, request):
        reason = stalls.stalled(settings.health_stall_seconds)
        if reason:
            return web.json({"status": "stalled", "reason": reason}, status=503)
        return web.json({"status": "ok"})

    async def answer(view: faust.web.View, work):
        """Run ``work`` off the event loop; our errors become 4xx/503 with one line."""
        try:
            return await work()
        except ClickHouseUnavailable as exc:
            return view.json({"error": str(exc)}, status=503)
        except FleetpulseError as exc:  # QueryError, RequestError, ConfigError, ClickHouseError
            return view.json({"error": str(exc)}, status=400)

    # One state-changing request at a time: their writes take the writer's
    # session, so a crowd of them must not queue ahead of ingestion.
    one_change = asyncio.Lock()

    async def change(view: faust.web.View, request, handle):
        async def work():
            body = await _json_body(request)
            if one_change.locked():
                return view.json({"error": "another change is in progress; retry when it is done"}, status=429)
            async with one_change:
                return view.json(await loop().run_in_executor(None, handle, body))
        return await answer(view, work)

    @app.page("/drift/baseline")
    class BaselineView(faust.web.View):
        """POST {"model", "from", "to", "features"?}: freeze a drift baseline (chDB is ours)."""

        async def post(self, request):
            return await change(self, request, lambda body: handle_baseline(ch, readers[0], settings, body))

    @app.page("/silences")
    class SilencesView(faust.web.View):
        """POST {"action": "add"|"list"|"expire", ...}: silences, while chDB is ours."""

        async def post(self, request):
            return await change(self, request, lambda body: silences.handle(ch, body))

    one_query = asyncio.Lock()
    readers = [reader]  # the session user SQL runs on; replaced when a query will not stop

    @app.page("/query")
    class QueryView(faust.web.View):
        """POST {"sql": "..."}: read-only SQL on the read-only session; answers NDJSON.
        One query at a time: the next one gets 429 until it finishes."""

        async def post(self, request):
            async def work():
                body = await _json_body(request)
                sql = body.get("sql") if isinstance(body, dict) else None
                if not isinstance(sql, str):
                    raise RequestError('the body must be {"sql": "SELECT ..."}')
                if one_query.locked():
                    return self.json({"error": "another query is running; retry when it is done"}, status=429)
                async with one_query:
                    try:
                        lines = await in_daemon_thread(run_query, readers[0], sql,
                                                        timeout=settings.query_timeout_seconds + ABANDON_AFTER_S)
                    except asyncio.TimeoutError:
                        log.error("a query ran %ds past its time limit and was abandoned; its session is replaced",
                                  ABANDON_AFTER_S)
                        readers[0] = await loop().run_in_executor(None, open_reader, settings)
                        return self.json({"error": "the query did not stop at its time limit and was abandoned"},
                                         status=503)
                return self.bytes(lines, content_type="application/x-ndjson")
            return await answer(self, work)
