"""A real Prometheus scrapes the worker: counters equal ClickHouse exactly, and
PromQL's histogram_quantile lands in the same bucket as ClickHouse's quantile."""

from __future__ import annotations

import time
import urllib.request

import numpy as np
import pytest

from fleetpulse.producers.simulator import SimulationConfig, run_simulation
from fleetpulse.streams.prometheus.requests import le_indices
from tests.integration.promstack import Prometheus
from tests.integration.workers import isolated_settings

pytestmark = pytest.mark.integration


def simulate(settings, count, seed):
    config = SimulationConfig(count=count, seed=seed, rate=2000.0, window_seconds=settings.window_seconds,
                              pace="fast")
    assert run_simulation(settings, config, progress=False).sent == count


@pytest.fixture(scope="module")
def scraped(kafka_settings, tmp_path_factory, start_worker):
    tmp = tmp_path_factory.mktemp("prom")
    settings = isolated_settings(kafka_settings, tmp)
    worker = start_worker(settings)
    prometheus = Prometheus(tmp, [f"127.0.0.1:{settings.http_port}"])
    simulate(settings, 30_000, seed=1)
    assert worker.wait_for("SELECT sum(requests) FROM request_stats", 30_000, timeout=120) == 30_000
    assert prometheus.wait_for("sum(gen_ai_server_requests_total)", 30_000) == 30_000
    phase1_at = time.time()
    simulate(settings, 20_000, seed=2)
    assert worker.wait_for("SELECT sum(requests) FROM request_stats", 50_000, timeout=120) == 50_000
    assert prometheus.wait_for("sum(gen_ai_server_requests_total)", 50_000) == 50_000
    yield settings, worker, prometheus, phase1_at, time.time()
    prometheus.stop()


def test_counters_equal_clickhouse_per_model_and_status(scraped):
    _, worker, prometheus, _, _ = scraped
    ch = {}
    for r in worker.query("SELECT model, sum(requests) AS n, sum(errors) AS e FROM request_stats GROUP BY model"):
        ch[(r["model"], "ok")], ch[(r["model"], "error")] = r["n"] - r["e"], r["e"]
    prom = {(r["metric"]["model"], r["metric"]["status"]): float(r["value"][1]) for r in prometheus.query(
        "sum by (model, status) (gen_ai_server_requests_total)")}
    assert prom == {k: float(v) for k, v in ch.items()}
    tokens_ch = worker.scalar("SELECT sum(output_tokens) FROM request_stats")
    assert prometheus.scalar("sum(gen_ai_usage_output_tokens_total)") == tokens_ch


def test_rate_over_the_second_phase_matches_what_clickhouse_counted(scraped):
    _, _, prometheus, phase1_at, end = scraped
    grown = prometheus.scalar(f"sum(gen_ai_server_requests_total @ {end}) - sum(gen_ai_server_requests_total @ {phase1_at})")
    assert grown == 20_000
    rate = prometheus.scalar(f"sum(rate(gen_ai_server_requests_total[{int(end - phase1_at) + 5}s] @ {end}))")
    assert rate > 0


@pytest.mark.parametrize("q", [0.5, 0.9, 0.99])
def test_histogram_quantile_lands_in_clickhouses_bucket(scraped, q):
    settings, worker, prometheus, _, _ = scraped
    ch = worker.scalar(f"SELECT fleetpulse_bucket_quantile(sumMap(latency_buckets), {q}) FROM request_windows")
    prom = prometheus.scalar(f"histogram_quantile({q}, sum by (le) (gen_ai_server_request_duration_seconds_bucket))")
    edges = [2.0 ** (k / 32) for k in le_indices(float(e) for e in settings.histogram_buckets.split(","))]
    j = int(np.searchsorted(edges, ch))  # ClickHouse's value lies in (edges[j-1], edges[j]]
    low, high = (edges[j - 1] if j else 0.0), (edges[j] if j < len(edges) else float("inf"))
    assert low * 0.989 <= prom <= high * 1.011, (q, ch, prom, low, high)


def test_exemplars_with_trace_ids_reach_prometheus(scraped):
    _, _, prometheus, _, end = scraped
    data = prometheus.api("query_exemplars", query="gen_ai_server_request_duration_seconds_bucket",
                          start=end - 600, end=end + 60)
    labels = [e["labels"] for series in data for e in series["exemplars"]]
    assert labels and all(len(lab["trace_id"]) == 32 for lab in labels)


@pytest.mark.parametrize("accept, content_type, openmetrics", [
    # What Prometheus 2.x sends: OpenMetrics 1.0.0 first.
    ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1", "application/openmetrics-text; version=1.0.0", True),
    ("application/openmetrics-text", "application/openmetrics-text; version=1.0.0", True),
    (None, "text/plain; version=0.0.4", False),
    ("text/plain;version=0.0.4", "text/plain; version=0.0.4", False),
    ("*/*", "text/plain; version=0.0.4", False),
])
def test_metrics_format_follows_the_accept_header(scraped, accept, content_type, openmetrics):
    settings = scraped[0]
    headers = {"Accept": accept} if accept else {}
    request = urllib.request.Request(f"http://127.0.0.1:{settings.http_port}/metrics", headers=headers)
    with urllib.request.urlopen(request, timeout=60) as r:
        got_type, text = r.headers["Content-Type"], r.read().decode()
    assert got_type.startswith(content_type) and "charset=utf-8" in got_type, got_type
    assert "gen_ai_server_requests_total" in text
    assert text.endswith("# EOF\n") == openmetrics
    assert (' # {trace_id="' in text) == openmetrics  # exemplars exist only in OpenMetrics
