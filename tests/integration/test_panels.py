"""Every panel of the catalogue, tested without Grafana, on a simulated fleet.

A real worker (real Kafka, real chDB) ingests a simulated fleet with error
bursts, a drift and GPU samples; a silence is added and a bad message sent. Then:

- every ClickHouse panel, expanded as the Grafana ClickHouse plugin 4.20.0
  expands it (literals), runs on chDB through the worker's /query, and must
  return rows; the pages' /api/panels answer (bound parameters) must be the same;
- the fleet overview's numbers equal the simulator's truth: counts exactly,
  p99s within the sketch's 1.1%, over the 10 s windows and over the 1 m rollup;
- every PromQL panel passes promtool and returns series from a real Prometheus
  scraping the worker.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import numpy as np
import orjson
import pytest
from confluent_kafka import Producer

from fleetpulse.producers.sim_quality import QualityShares
from fleetpulse.producers.simulator import Drift, SimulationConfig, generate, run_simulation
from fleetpulse.streams.panels.dashboards import DASHBOARDS, PANELS, VARIABLES
from fleetpulse.streams.panels.macros import TimeRange, as_grafana, choose_interval, rate_interval, variables
from fleetpulse.streams.panels.serve import MAX_POINTS
from fleetpulse.streams.windows.grid import window_start
from fleetpulse.streams.windows.watermark import newest_closed_start
from tests.clock import RECENT_HOUR
from tests.integration.promstack import Prometheus
from tests.integration.workers import isolated_settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

DURATION_S = 600
CONFIG = SimulationConfig(nodes=2, models=2, rate=100.0, duration_s=DURATION_S, seed=7, start=RECENT_HOUR,
                          burst_every_s=200, burst_len_s=40, burst_error_rate=0.6, pace="fast", gpu_samples=True,
                          drifts=(Drift("input_tokens", 1.0, 300), Drift("finish_reason", 0.5, 300)),
                          quality=QualityShares(refusal=0.05, repetition=0.2))
CLICKHOUSE_PANELS = [p for p in PANELS.values() if p.sql]
PROMQL_PANELS = [p for p in PANELS.values() if p.promql]


class Fleet:
    def __init__(self, settings, worker, prometheus):
        self.settings, self.worker, self.prometheus = settings, worker, prometheus
        # The simulated data only (10 s windows), and a day and more ending now (the 1 m rollup).
        self.narrow = (int(RECENT_HOUR), int(RECENT_HOUR) + DURATION_S)
        self.wide = (int(RECENT_HOUR) - 3600, int(time.time()) + 60)
        # Up to the newest firing event the fixture saw: which alerts are still
        # firing at the end depends on how far the evaluator has got (it starts
        # at the present, and later windows may resolve them), at that moment
        # one is, for good: the table is history.
        firing_at = worker.scalar("SELECT toFloat64(max(timestamp)) FROM alerts WHERE status = 'firing'")
        self.firing = (self.wide[0], math.ceil(firing_at))

    def span(self, bounds: tuple[int, int]) -> TimeRange:
        start, end = bounds
        return TimeRange(start, end, choose_interval(start, end, self.settings.window_seconds, MAX_POINTS))

    def as_grafana_sends(self, sql: str, bounds: tuple[int, int]) -> list[dict]:
        """Rows of ``sql`` as Grafana would run it with every variable on All."""
        span = self.span(bounds)
        values = {}
        for name in variables(sql):
            rows = self.worker.query(as_grafana(VARIABLES[name].sql, span, {}))
            values[name] = [next(iter(r.values())) for r in rows]
        return self.worker.query(as_grafana(sql, span, values))

    def panel(self, name: str, bounds: tuple[int, int], token: str | None = None, **filters) -> dict:
        params = [("from", bounds[0]), ("to", bounds[1])] + [(k, v) for k, vs in filters.items() for v in vs]
        request = urllib.request.Request(f"{self.worker.base}/api/panels/{name}?{urllib.parse.urlencode(params)}",
                                         headers={"Authorization": f"Bearer {token}"} if token else {})
        with urllib.request.urlopen(request, timeout=60) as response:
            return orjson.loads(response.read())


def _every_gpu_window(settings, worker):
    """(what, SQL) to wait for until the GPU windows stop changing: every
    sample stored (SimulatedGpus.finish sends the last second after the last
    request), then every window the fleet watermark will close, at the base
    grain and at 1 m (both written in the same tick). Read after every
    request window is in. A panel that joins requests with GPU windows would
    otherwise change between two reads of it."""
    newest_request = worker.scalar("SELECT max(max_event_time) FROM request_windows")
    newest_sample = math.floor(newest_request) + 1
    final = newest_closed_start(newest_sample, settings.window_seconds, settings.allowed_lateness_seconds)
    minute = window_start(final + settings.window_seconds, 60) - 60
    yield "every GPU sample", f"SELECT max(timestamp) >= {newest_sample} FROM gpu_samples"
    yield "every GPU window", (f"SELECT (SELECT max(toUInt32(window_start)) FROM gpu_windows) >= {final} AND "
                               f"(SELECT max(toUInt32(window_start)) FROM gpu_windows_1m) >= {minute}")


@pytest.fixture(scope="module")
def fleet(kafka_settings, tmp_path_factory, start_worker):
    tmp = tmp_path_factory.mktemp("panels")
    settings = isolated_settings(kafka_settings, tmp, drift_window_minutes=1)
    prometheus = Prometheus(tmp, [f"127.0.0.1:{settings.http_port}"])
    try:
        settings = isolated_settings(kafka_settings, tmp, drift_window_minutes=1, http_port=settings.http_port,
                                     prometheus_url=f"http://127.0.0.1:{prometheus.port}",
                                     prices=str(ROOT / "infra/prices/example.yml"))
        worker = start_worker(settings)
        producer = Producer({"bootstrap.servers": settings.bootstrap})
        producer.produce(settings.topic("requests"), b'{"not": "an event"}')
        producer.flush(30)
        result = run_simulation(settings, CONFIG, progress=False)
        assert result.sent == CONFIG.total
        worker.post("/silences", {"action": "add", "matchers": {"model": "nobody"}, "seconds": 3600,
                                  "comment": "panel test"})
        last = int(RECENT_HOUR) + DURATION_S
        for what, sql in (("drift evaluations", f"SELECT max(window) >= toDateTime({last - 120}) FROM drift_stats"),
                          ("a firing alert", "SELECT count() > 0 FROM alerts WHERE status = 'firing'"),
                          ("every request window", f"SELECT sum(requests) = {CONFIG.total} FROM request_windows")):
            assert worker.wait_for(sql, 1, timeout=240) == 1, f"no {what} after 240 s:\n{worker.log_tail()}"
        for what, sql in _every_gpu_window(settings, worker):  # read once every request window is in
            assert worker.wait_for(sql, 1, timeout=240) == 1, f"no {what} after 240 s:\n{worker.log_tail()}"
        yield Fleet(settings, worker, prometheus)
    finally:
        prometheus.stop()


@pytest.mark.parametrize("panel", CLICKHOUSE_PANELS, ids=lambda p: p.name)
def test_every_clickhouse_panel_returns_rows_as_grafana_runs_it_and_as_the_pages_do(fleet, panel):
    # Silences live in wall-clock time (added now); the simulated data a day ago.
    # Firing alerts: up to a moment when one is (Fleet.firing).
    ranges = {"alerts_silences": (fleet.wide,), "alerts_firing": (fleet.firing,)}
    for bounds in ranges.get(panel.name, (fleet.narrow, fleet.wide)):
        grafana = fleet.as_grafana_sends(panel.sql, bounds)
        assert grafana, f"{panel.name} returned no rows over {bounds}"
        pages = fleet.panel(panel.name, bounds)
        assert pages["columns"] == list(grafana[0].keys())
        assert len(pages["rows"]) == len(grafana)
        assert pages["interval_s"] == fleet.span(bounds).interval_s
        for row, expected in zip(pages["rows"], grafana):
            for value, (column, want) in zip(row, expected.items()):
                if column == "time":
                    assert value == _seconds(want)
                elif isinstance(want, float):
                    assert value == pytest.approx(want, rel=1e-6), (panel.name, column)  # Float32 columns print short
                elif column not in ("starts_at", "ends_at", "timestamp", "evaluated"):
                    assert value == want, (panel.name, column)


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _truth():
    """Exact totals and latencies of the simulated events, per model and overall."""
    out = defaultdict(lambda: defaultdict(list))
    for chunk in generate(CONFIG):
        for e in chunk:
            for key in (e["gen_ai.request.model"], "*"):
                t = out[key]
                t["requests"].append(1)
                t["errors"].append(e.get("error.type") is not None)
                t["output_tokens"].append(e["gen_ai.usage.output_tokens"])
                t["latency"].append(e["gen_ai.server.request.duration"])
                if e.get("gen_ai.server.time_to_first_token") is not None:
                    t["ttft"].append(e["gen_ai.server.time_to_first_token"])
                if e.get("gen_ai.server.time_per_output_token") is not None:
                    t["tpot"].append(e["gen_ai.server.time_per_output_token"])
    return out


def _token_cost() -> float:
    """The simulated tokens priced by hand from the shipped example price table."""
    from fleetpulse.prices import read_prices
    prices = {m: p for m, *p in read_prices(str(ROOT / "infra/prices/example.yml")).models}
    total = 0.0
    for chunk in generate(CONFIG):
        for e in chunk:
            p_in, p_out, p_cached = prices[e["gen_ai.request.model"]]
            cached = e.get("gen_ai.usage.cache_read.input_tokens") or 0
            total += ((e["gen_ai.usage.input_tokens"] - cached) * p_in + cached * p_cached
                      + e["gen_ai.usage.output_tokens"] * p_out) / 1e6
    return total


def _exact_quantile(values, q) -> float:
    ordered = np.sort(np.asarray(values, dtype=float))
    return float(ordered[max(1, math.ceil(round(q * len(ordered), 6))) - 1])


@pytest.mark.parametrize("which", ["narrow", "wide"])
def test_fleet_overview_equals_the_simulators_truth(fleet, which):
    bounds = getattr(fleet, which)
    truth = _truth()["*"]

    def stat(name):
        rows = fleet.panel(name, bounds)["rows"]
        assert len(rows) == 1, rows
        return rows[0][0]

    assert stat("fleet_requests") == len(truth["requests"])
    assert stat("fleet_error_rate_total") == pytest.approx(sum(truth["errors"]) / len(truth["requests"]), rel=1e-12)
    for panel, column in (("fleet_latency_p99_total", "latency"), ("fleet_ttft_p99_total", "ttft"),
                          ("fleet_tpot_p99_total", "tpot")):
        exact = _exact_quantile(truth[column], 0.99)
        assert stat(panel) == pytest.approx(exact, rel=0.011), panel
    assert stat("fleet_output_tokens_total") == pytest.approx(sum(truth["output_tokens"]) / (bounds[1] - bounds[0]))
    assert stat("fleet_token_cost") == pytest.approx(_token_cost(), rel=1e-9)

    # The time series add up to the same counts, per model, whatever the interval.
    answer = fleet.panel("fleet_requests_per_s", bounds)
    per_model = defaultdict(float)
    for _, model, per_s in answer["rows"]:
        per_model[model] += per_s * answer["interval_s"]
    everything = _truth()
    assert {m: round(n) for m, n in per_model.items()} == {
        m: len(t["requests"]) for m, t in everything.items() if m != "*"}


def test_a_filter_narrows_what_a_panel_shows(fleet):
    everything = fleet.panel("fleet_requests_per_s", fleet.narrow)
    models = sorted({row[1] for row in everything["rows"]})
    assert len(models) == 2
    one = fleet.panel("fleet_requests_per_s", fleet.narrow, model=[models[0]])
    assert {row[1] for row in one["rows"]} == {models[0]}
    total = fleet.panel("fleet_requests", fleet.narrow, model=[models[0]])["rows"][0][0]
    assert total == len(_truth()[models[0]]["requests"])
    nodes = fleet.panel("model_requests_by_node", fleet.narrow, node=["nobody"])
    assert nodes["rows"] == []


def test_pipeline_panels_pass_promtool():
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: run scripts/bootstrap.sh (Debian package prometheus)"
    rules = {"groups": [{"name": "panels", "rules": [
        {"record": f"panel:{p.name}", "expr": p.promql.replace("$__rate_interval", rate_interval(10))}
        for p in PROMQL_PANELS]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
        f.write(orjson.dumps(rules).decode())
        f.flush()
        result = subprocess.run([binary, "check", "rules", f.name], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(PROMQL_PANELS)} rules found" in result.stdout


@pytest.mark.parametrize("panel", PROMQL_PANELS, ids=lambda p: p.name)
def test_every_promql_panel_returns_series_from_a_real_prometheus(fleet, panel):
    bounds = (int(time.time()) - 600, int(time.time()))
    deadline = time.monotonic() + 90
    answer = None
    while time.monotonic() < deadline:
        answer = fleet.panel(panel.name, (bounds[0], int(time.time())))
        if answer["rows"] and any(row[2] is not None for row in answer["rows"]):
            break
        time.sleep(1)
    assert answer and answer["rows"], f"{panel.name}: Prometheus gave no series for {panel.promql}"
    assert answer["columns"] == ["time", "series", "value"]


def test_unknown_panels_and_bad_parameters_get_one_line_answers(fleet):
    def status(path):
        try:
            with urllib.request.urlopen(fleet.worker.base + path, timeout=30) as response:
                return response.status, orjson.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, orjson.loads(exc.read())

    assert status("/api/panels/nope")[0] == 404
    code, body = status("/api/panels/fleet_requests?from=yesterday")
    assert code == 400 and "unix seconds" in body["error"]
    code, body = status("/api/panels/fleet_requests?sql=SELECT%201")
    assert code == 400 and "unknown parameter 'sql'" in body["error"]
    code, body = status("/api/panels/fleet_requests?from=100&to=50")
    assert code == 400 and "before" in body["error"]
    code, body = status("/api/panels/fleet_requests?model=%27%29%20OR%201%3D1%20--")
    assert code == 200 and body["rows"] == [[0]]  # a value, never SQL
    assert status("/api/variables/model")[1]["values"] == []  # the last 15 minutes: nothing simulated there
    code, body = status(f"/api/variables/model?from={fleet.narrow[0]}&to={fleet.narrow[1]}")
    assert code == 200 and len(body["values"]) == 2
    code, body = status("/api/dashboards")
    assert [d["name"] for d in body["dashboards"]] == [d.name for d in DASHBOARDS]
