"""``fleetpulse cardinality``: read the worker's /metrics or a Prometheus, and
hand the numbers to fleetpulse/cardinality.py (pure) to judge.

The worker: GET /metrics (with the bearer token when one is set, as
``fleetpulse query`` sends it), parsed with prometheus_client's parser; with
``--watch`` several reads, for churn.

A Prometheus (``--prometheus URL``): /api/v1/status/tsdb (head series and its
top lists), /api/v1/targets (scrape intervals), per job the scrape
statistics Prometheus records for every target (``scrape_series_added``,
``scrape_samples_post_metric_relabeling``) over the window, then for the jobs
worth a closer look their label names and each label's live and seen values;
and the TSDB's own counters (``prometheus_tsdb_head_series_created_total``,
``..._removed_total``): from the Prometheus's own series when it scrapes itself,
else from its /metrics since it started.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from fleetpulse.cardinality import (ID_LIKE_VALUES, OK, SERIES_PER_TARGET_HIGH, GroupStats, LabelValues, Sample,
                                    classify, exposition_report, prometheus_report, removed_from)
from fleetpulse.errors import PrometheusUnavailable, QueryError, RequestError
from fleetpulse.querycli import worker_request
from fleetpulse.settings import Settings

TIMEOUT_S = 30.0
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


# -- the worker -----------------------------------------------------------------------

def worker_report(settings: Settings, watch_s: float | None = None, every_s: float | None = None) -> dict:
    request = worker_request(settings, "/metrics")
    # What Prometheus asks for, so the series are the ones it stores (counters'
    # _created samples inside their family, not families of their own).
    request.add_header("Accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
    reads = [(time.monotonic(), _read_worker(request))]
    if watch_s:
        every = every_s or max(1.0, watch_s / 5)
        end = reads[0][0] + watch_s
        while (now := time.monotonic()) < end:
            time.sleep(min(every, end - now))
            reads.append((time.monotonic(), _read_worker(request)))
    return exposition_report(reads, request.full_url)


def _read_worker(request: urllib.request.Request) -> list[Sample]:
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            text = response.read().decode()
            openmetrics = response.headers.get("Content-Type", "").startswith("application/openmetrics-text")
    except urllib.error.HTTPError as exc:
        raise QueryError(f"the worker at {request.full_url} answered {exc.code} {exc.reason}"
                         + (" (set FLEETPULSE_HTTP_TOKEN to the worker's token)" if exc.code == 401 else "")) from None
    except (urllib.error.URLError, OSError) as exc:
        raise QueryError(f"no worker answers at {request.full_url} ({_reason(exc)}): is `fleetpulse worker` "
                         f"running with this FLEETPULSE_HTTP_HOST/FLEETPULSE_HTTP_PORT?") from None
    return parse_exposition(text, request.full_url, openmetrics)


def parse_exposition(text: str, where: str, openmetrics: bool = False) -> list[Sample]:
    parse = openmetrics_families if openmetrics else text_string_to_metric_families
    try:
        return [Sample(family.name, s.name, tuple(sorted(s.labels.items())), float(s.value))
                for family in parse(text) for s in family.samples]
    except (ValueError, TypeError, KeyError) as exc:
        raise QueryError(f"{where} is not a Prometheus exposition: {str(exc)[:200]}") from None


# -- a Prometheus ---------------------------------------------------------------------

class Prometheus:
    def __init__(self, url: str, timeout: float = TIMEOUT_S):
        if not re.match(r"^https?://[^/\s]+", url):
            raise RequestError(f"--prometheus {url!r}: expected a URL like http://127.0.0.1:9090")
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str, params: dict | list | None = None) -> bytes:
        query = f"?{urllib.parse.urlencode(params or {}, doseq=True)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read())["error"]
            except (ValueError, KeyError, TypeError):
                message = f"{exc.code} {exc.reason}"
            raise PrometheusUnavailable(f"Prometheus at {self.url} refused {path}: {str(message)[:300]}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise PrometheusUnavailable(f"Prometheus at {self.url} did not answer ({_reason(exc)})") from None

    def api(self, path: str, params: dict | list | None = None):
        body = self._get(f"/api/v1/{path}", params)
        try:
            answer = json.loads(body)
            if answer.get("status") != "success":
                raise PrometheusUnavailable(f"Prometheus at {self.url} refused {path}: "
                                            f"{str(answer.get('error'))[:300]}")
            return answer["data"]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise PrometheusUnavailable(f"{self.url} did not answer /api/v1/{path} as a Prometheus does") from None

    def query(self, expr: str, at: float) -> list[dict]:
        return self.api("query", {"query": expr, "time": f"{at:.3f}"})["result"]

    def by_job(self, expr: str, at: float) -> dict[str, float]:
        return {r["metric"].get("job", ""): float(r["value"][1]) for r in self.query(expr, at)}

    def own_metrics(self) -> dict[str, float]:
        """Prometheus's own /metrics, unlabelled samples only; {} when it does not serve them."""
        try:
            text = self._get("/metrics").decode()
            return {s.name: s.value for s in parse_exposition(text, self.url) if not s.labels}
        except (PrometheusUnavailable, QueryError):
            return {}


def prometheus_cardinality(url: str, over_s: float, top: int = 10) -> dict:
    prom = Prometheus(url)
    status = prom.api("status/tsdb")
    now_ms = round(time.time() * 1000)  # every query is at this instant, in Prometheus's milliseconds
    now = now_ms / 1000
    own = prom.own_metrics()
    lowest_ms = round(own.get("prometheus_tsdb_lowest_timestamp", 0)) or round(_start_time(prom) * 1000)
    # The window ends now and starts --over ago, or 1 ms after the oldest
    # sample the TSDB holds: Prometheus 2's range selectors include their
    # start, so a scrape at the very start would count both in `created` (the
    # range) and in `before` (the offset); 1 ms later it is only in `before`.
    window_ms = max(1, min(round(over_s * 1000), now_ms - lowest_ms - 1 if lowest_ms else round(over_s * 1000)))
    span = window_ms / 1000
    window = f"{window_ms}ms"
    intervals = _scrape_intervals(prom)

    live = prom.by_job("sum by (job) (scrape_samples_post_metric_relabeling)", now)
    created = prom.by_job(f"sum by (job) (sum_over_time(scrape_series_added[{window}]))", now)
    before = prom.by_job(f"sum by (job) (scrape_samples_post_metric_relabeling offset {window})", now)
    scrapes = prom.by_job(f"max by (job) (count_over_time(scrape_series_added[{window}]))", now)
    targets = prom.by_job("count by (job) (up == 1)", now)

    groups = []
    for job in sorted(set(live) | set(created)):
        n_live, n_created = int(live.get(job, 0)), int(created.get(job, 0))
        n_before = int(before[job]) if job in before else None
        job_span = min(span, scrapes.get(job, 0) * intervals[job]) if job in intervals else span
        groups.append(GroupStats(job, n_live, n_created, removed_from(n_created, n_live, n_before), job_span,
                                 int(targets.get(job, 0)), n_before))
    # Label values only where they can matter: a label with an id's worth of
    # live values needs that many live series; churn shows in the counts first.
    worth = sorted((g for g in groups if classify(g).kind != OK or g.live >= ID_LIKE_VALUES
                    or g.live / max(g.targets, 1) >= SERIES_PER_TARGET_HIGH),
                   key=lambda g: (-(g.removed or 0), -g.live))[:top]
    labelled = {g.name: GroupStats(g.name, g.live, g.created, g.removed, g.span_s, g.targets, g.before,
                                   _label_values(prom, g.name, now, span)) for g in worth}
    groups = [labelled.get(g.name, g) for g in groups]
    return prometheus_report(prom.url, over_s, span, int(status.get("headStats", {}).get("numSeries", 0)), groups,
                             status, _tsdb_counters(prom, own, window, span, now))


def _label_values(prom: Prometheus, job: str, now: float, span: float) -> tuple[LabelValues, ...]:
    """Each label of a job's series: distinct values live now (an instant query:
    stale series are left out), and seen over the window (the index, through
    the label values API: every series with data in the window, dead or alive)."""
    selector = f'{{job="{_quote(job)}"}}'
    window = {"match[]": selector, "start": f"{now - max(span, 1):.3f}", "end": f"{now:.3f}"}
    out = []
    for name in prom.api("labels", window):
        if name == "job" or not _LABEL.match(name):
            continue
        live = prom.query(f'count(count by ({name}) ({{job="{_quote(job)}", {name}!=""}}))', now)
        seen = prom.api(f"label/{name}/values", window)
        out.append(LabelValues(name, int(float(live[0]["value"][1])) if live else 0, len(seen)))
    return tuple(out)


def _tsdb_counters(prom: Prometheus, own: dict[str, float], window: str, span: float, now: float) -> dict | None:
    """Series created and removed per hour by the TSDB itself: from its own
    series over the window when it scrapes itself (one such series), else from
    its /metrics since it started."""
    created = prom.query(f"increase(prometheus_tsdb_head_series_created_total[{window}])", now)
    removed = prom.query(f"increase(prometheus_tsdb_head_series_removed_total[{window}])", now)
    if len(created) == 1 and len(removed) == 1 and span > 0:
        return {"basis": f"own series over {window}",
                "created_per_hour": round(float(created[0]["value"][1]) * 3600 / span, 1),
                "removed_per_hour": round(float(removed[0]["value"][1]) * 3600 / span, 1)}
    started = own.get("process_start_time_seconds")
    if not started or "prometheus_tsdb_head_series_created_total" not in own:
        return None
    uptime = max(1.0, now - started)
    return {"basis": f"its /metrics since it started {uptime / 3600:.2f} h ago",
            "created_per_hour": round(own["prometheus_tsdb_head_series_created_total"] * 3600 / uptime, 1),
            "removed_per_hour": round(own.get("prometheus_tsdb_head_series_removed_total", 0) * 3600 / uptime, 1)}


def _scrape_intervals(prom: Prometheus) -> dict[str, float]:
    out: dict[str, float] = {}
    for target in prom.api("targets", {"state": "active"}).get("activeTargets", []):
        job = target.get("labels", {}).get("job", "")
        seconds = _promduration(target.get("scrapeInterval", ""))
        if seconds:
            out[job] = max(out.get(job, 0.0), seconds)
    return out


def _start_time(prom: Prometheus) -> float:
    from datetime import datetime

    try:
        text = prom.api("status/runtimeinfo")["startTime"]
        return datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", text.replace("Z", "+00:00"))).timestamp()
    except (PrometheusUnavailable, KeyError, ValueError, TypeError):
        return 0.0


def _promduration(text: str) -> float:
    """Prometheus's durations: 15s, 1m30s, 1h, 500ms."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)", text or "")
    return sum(float(n) * units[u] for n, u in parts)


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "reason", None) or exc)[:120]
