"""The built-in pages and their data, made from the panel catalogue (streams/panels).

    GET /, /d/<dashboard>      the pages (one HTML shell; the script draws the dashboard)
    GET /static/<file>         the script, styles and uPlot, from streams/panels/static
    GET /api/dashboards        the catalogue: dashboards, their panels and filters
    GET /api/variables/<name>  a filter's values over ?from=&to=
    GET /api/panels/<name>     a panel's rows over ?from=&to=, filtered by ?model=&node=&gpu=

The data endpoints run the catalogue's own SQL with bound parameters on a
read-only session of their own (so a long /query does not hold the pages up),
two at a time; the web guard (streams/worker/web.py) applies /query's Host,
Origin and token rules to them. Static files are read once, at start.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import logging
import time

import faust
import faust.web
import orjson

from fleetpulse.errors import ClickHouseUnavailable, FleetpulseError, PrometheusUnavailable
from fleetpulse.settings import Settings
from fleetpulse.streams.panels import serve
from fleetpulse.streams.panels.dashboards import DASHBOARDS, PANELS, VARIABLES, dashboard
from fleetpulse.streams.worker.offload import ABANDON_AFTER_S, in_daemon_thread
from fleetpulse.streams.worker.query import open_reader

log = logging.getLogger("fleetpulse.worker")

CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml"}
#: The pages load nothing from elsewhere and run no inline script; nobody may frame them.
HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                                      "script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}
CONCURRENT_QUERIES = 2  # the machine's cores: ingestion keeps the rest of the time


def static_files() -> dict[str, tuple[bytes, str]]:
    """Every file the pages may load, by name, with its content type."""
    folder = importlib.resources.files("fleetpulse.streams.panels") / "static"
    out = {}
    for item in folder.iterdir():
        suffix = "." + item.name.rsplit(".", 1)[-1] if "." in item.name else ""
        if item.is_file() and suffix in CONTENT_TYPES:
            out[item.name] = (item.read_bytes(), CONTENT_TYPES[suffix])
    return out


def catalogue_json(settings: Settings) -> dict:
    return {"refresh_s": settings.window_seconds, "dashboards": [
        {"name": d.name, "title": d.title, "description": d.description,
         "variables": [{"name": v.name, "label": v.label} for v in d.variables],
         "panels": [{"name": p.name, "title": p.title, "kind": p.kind, "unit": p.unit, "width": p.width,
                     "source": p.source, "description": p.description} for p in d.panels]}
        for d in DASHBOARDS]}


def _json(view: faust.web.View, value: object, status: int = 200):
    """JSON as browsers parse it: orjson writes NaN and infinities as null (faust's encoder would write NaN)."""
    return view.bytes(orjson.dumps(value), status=status,
                      headers={"Content-Type": "application/json", "Cache-Control": "no-cache"})


def add_dashboard_pages(app: faust.App, settings: Settings) -> None:
    files = static_files()
    catalogue = catalogue_json(settings)
    readers = [None]  # opened on first use: the pages cost nothing until someone looks
    slots = asyncio.Semaphore(CONCURRENT_QUERIES)
    opening = asyncio.Lock()  # one session, however many requests find none

    def file_answer(view: faust.web.View, name: str):
        if name not in files:
            return _json(view, {"error": f"no such file: {name[:100]}"}, 404)
        body, content_type = files[name]
        return view.bytes(body, headers={**HEADERS, "Content-Type": content_type})

    @app.page("/")
    async def home(web, request):
        return file_answer(web, "index.html")

    @app.page("/d/{name}")
    class DashboardPage(faust.web.View):
        async def get(self, request, name):
            if dashboard(name) is None:
                return _json(self, {"error": f"no dashboard {name[:100]!r}; see /api/dashboards"}, 404)
            return file_answer(self, "index.html")

    @app.page("/static/{name}")
    class StaticFile(faust.web.View):
        async def get(self, request, name):
            return file_answer(self, name)

    @app.page("/api/dashboards")
    async def dashboards(web, request):
        return _json(web, catalogue)

    async def run(view: faust.web.View, request, work):
        """``work(reader, parsed request)`` on a thread, two at a time; errors as one line."""
        try:
            parsed = serve.parse_request({k: request.query.getall(k) for k in request.query.keys()},
                                         settings.window_seconds, time.time())
            async with slots:
                async with opening:
                    if readers[0] is None:
                        readers[0] = await asyncio.get_running_loop().run_in_executor(None, open_reader, settings)
                try:
                    return _json(view, await in_daemon_thread(work, readers[0], parsed,
                                                              timeout=settings.query_timeout_seconds + ABANDON_AFTER_S))
                except asyncio.TimeoutError:
                    log.error("a panel query ran %ds past its time limit; its session is replaced", ABANDON_AFTER_S)
                    readers[0] = None
                    return _json(view, {"error": "the query did not stop at its time limit"}, 503)
        except (ClickHouseUnavailable, PrometheusUnavailable) as exc:
            return _json(view, {"error": str(exc)}, 503)
        except FleetpulseError as exc:
            return _json(view, {"error": str(exc)}, 400)

    @app.page("/api/panels/{name}")
    class PanelData(faust.web.View):
        async def get(self, request, name):
            panel = PANELS.get(name)
            if panel is None:
                return _json(self, {"error": f"no panel {name[:100]!r}; see /api/dashboards"}, 404)
            if panel.promql:
                return await run(self, request, lambda _, parsed: serve.prometheus_answer(
                    settings.prometheus_url, panel, parsed))
            return await run(self, request, lambda reader, parsed: serve.clickhouse_answer(reader, panel, parsed))

    @app.page("/api/variables/{name}")
    class VariableValues(faust.web.View):
        async def get(self, request, name):
            if name not in VARIABLES:
                return _json(self, {"error": f"no variable {name[:100]!r}; the variables are "
                                            f"{', '.join(sorted(VARIABLES))}"}, 404)
            return await run(self, request, lambda reader, parsed: {
                "values": serve.variable_values(reader, name, parsed.span)})
