"""``fleetpulse cardinality``, run as a user runs it: against a real Prometheus
scraping a churning target and a stable explosion, and against a real worker
whose labels fold into ``__other__``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from fleetpulse.producers.simulator import SimulationConfig, run_simulation
from fleetpulse.settings import Secret
from tests.clock import RECENT_HOUR
from tests.integration.promstack import Prometheus
from tests.integration.workers import isolated_settings

pytestmark = pytest.mark.integration

ROUTES = 20           # series per pod
SCRAPES_PER_POD = 3   # a new pod every 3 scrapes: a deploy every 3 s
PODS = 6              # pods Prometheus must have seen before the report
USERS = 5_000         # one series per user: an id as a label


class RollingPods(Collector):
    """One pod's ROUTES series; the pod is replaced every SCRAPES_PER_POD
    scrapes and its series disappear, as in a rolling deploy."""

    def __init__(self):
        self.scrapes = 0
        self.lock = threading.Lock()

    def collect(self):
        with self.lock:
            pod = self.scrapes // SCRAPES_PER_POD
            self.scrapes += 1
        family = CounterMetricFamily("app_requests", "Requests served.", labels=["pod", "route"])
        for route in range(ROUTES):
            family.add_metric([f"api-7f9c-{pod:04d}", f"/v1/r{route}"], 1.0)
        yield family


class Users(Collector):
    """USERS series that never change: a user_id label."""

    def collect(self):
        family = CounterMetricFamily("app_user_requests", "Requests per user.", labels=["user_id"])
        for user in range(USERS):
            family.add_metric([f"u{user:06d}"], float(user % 7))
        yield family


def serve(collector: Collector):
    registry = CollectorRegistry()
    registry.register(collector)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    return server, f"127.0.0.1:{server.server_address[1]}"


def cardinality(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fleetpulse", "cardinality", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_prometheus_report_tells_churn_from_a_stable_explosion(tmp_path):
    pods, users = serve(RollingPods()), serve(Users())
    prometheus = None
    try:
        prometheus = Prometheus(tmp_path, [], jobs={"rollout": [pods[1]], "accounts": [users[1]]}, scrape_self=True)
        # Bounded, event-driven: until Prometheus has stored every user, and PODS pods.
        wait_until(lambda: prometheus.scalar('scrape_samples_post_metric_relabeling{job="accounts"}') == USERS,
                   60, "the accounts job's 5000 series")
        wait_until(lambda: (prometheus.scalar('sum_over_time(scrape_series_added{job="rollout"}[10m])') or 0)
                   >= ROUTES * PODS, 60, f"{PODS} pods of the rollout job")

        done = cardinality("--prometheus", prometheus.url, "--format", "json")
        assert done.returncode == 3, done.stderr  # 3: something flagged
        report = json.loads(done.stdout)
        groups = {g["group"]: g for g in report["groups"]}

        rollout = groups["rollout"]
        assert rollout["kind"] == "churn", rollout
        assert rollout["live_series"] == ROUTES
        assert rollout["removed"] >= ROUTES * (PODS - 2), rollout  # the pods replaced, give or take one in flight
        assert [c["label"] for c in rollout["culprits"]] == ["pod"], rollout
        pod = rollout["culprits"][0]
        assert pod["live_values"] == 1 and pod["seen_values"] >= PODS - 1
        assert "rollout" in pod["fix"]

        accounts = groups["accounts"]
        assert accounts["kind"] == "stable explosion", accounts
        assert accounts["live_series"] == USERS
        assert accounts["removed"] == 0, accounts
        assert accounts["culprits"][0]["label"] == "user_id" and accounts["culprits"][0]["live_values"] == USERS
        assert "labeldrop" in accounts["culprits"][0]["fix"]

        assert report["head_series"] >= USERS + ROUTES * PODS  # dead pods stay in the head
        assert report["span_s"] <= 3600  # --over 1h, cut to the data the Prometheus holds
        assert ["user_id", USERS] in report["tsdb"]["labelValueCountByLabelName"]
        assert groups["prometheus"]["kind"] == "ok", groups["prometheus"]  # its own metrics neither churn nor explode
        counters = report["tsdb_counters"]  # it scrapes itself: from its own series over the window
        assert counters["basis"].startswith("own series") and counters["created_per_hour"] > 0, counters

        table = cardinality("--prometheus", prometheus.url, "--over", "30m")
        assert table.returncode == 3, table.stderr
        lines = table.stdout.splitlines()
        assert any(line.startswith("rollout") and "churn" in line and "pod" in line for line in lines), table.stdout
        assert any(line.startswith("accounts") and "stable explosion" in line and "user_id" in line
                   for line in lines), table.stdout
    finally:
        if prometheus is not None:
            prometheus.stop()
        for server, _ in (pods, users):
            server.shutdown()
            server.server_close()


def test_unreachable_prometheus_and_worker_are_one_line_errors(tmp_path):
    from fleetpulse.localkafka import free_port

    port = free_port()
    done = cardinality("--prometheus", f"http://127.0.0.1:{port}")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("fleetpulse: error: Prometheus at") and done.stderr.count("\n") == 1, done.stderr
    done = cardinality(env={"FLEETPULSE_HTTP_PORT": str(port)})
    assert done.returncode == 1
    assert done.stderr.startswith("fleetpulse: error: no worker answers") and done.stderr.count("\n") == 1, done.stderr


def family_series(text: str, family: str) -> int:
    """Samples of one family in the exposition, counted by hand."""
    names = {family, *(family + suffix for suffix in ("_bucket", "_sum", "_count", "_total", "_created"))}
    return sum(1 for line in text.splitlines()
               if line and not line.startswith("#") and line.split("{")[0].split(" ")[0] in names)


def test_worker_report_shows_series_and_folded_values(kafka_settings, tmp_path_factory, start_worker):
    tmp = tmp_path_factory.mktemp("cardinality-report")
    settings = isolated_settings(kafka_settings, tmp, metric_labels="model,node", metric_label_cap=1,
                                 http_token=Secret("s3cret-token"))
    worker = start_worker(settings)
    events = 2_000
    config = SimulationConfig(nodes=2, models=1, rate=200.0, count=events, seed=3, burst_every_s=0, start=RECENT_HOUR,
                              window_seconds=settings.window_seconds, pace="fast")
    run_simulation(settings, config, progress=False)
    assert worker.wait_for("SELECT sum(requests) FROM request_windows", events, timeout=120) == events
    text = worker.wait_for_metrics(lambda t: "fleetpulse_label_values_folded_total{label=\"node\"}" in t
                                   and 'node="__other__"' in t)

    env = settings.to_environ()
    done = cardinality("--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["labels"]["node"] == {"values": 2, "other_series": report["labels"]["node"]["other_series"]}
    assert report["labels"]["node"]["other_series"] > 0
    assert report["labels"]["model"]["values"] == 1  # one model: under the cap
    families = {f["name"]: f for f in report["families"]}
    for family in ("gen_ai_server_request_duration_seconds", "gen_ai_server_requests"):
        assert families[family]["series"] == family_series(text, family), family
    assert families["gen_ai_server_request_duration_seconds"]["labels"]["node"] == 2
    kept = next(r["node"] for r in worker.query("SELECT DISTINCT node FROM request_windows")
                if f'node="{r["node"]}"' in text)
    folded = {f["label"]: f["requests"] for f in report["folded"]}
    kept_requests = worker.scalar(f"SELECT sum(requests) FROM request_windows WHERE node = '{kept}'")
    assert folded["node"] == events - kept_requests
    assert report["churn"] is None and "--watch" in report["churn_note"]

    watched = cardinality("--watch", "5", "--every", "1", "--format", "json", env=env)
    assert watched.returncode == 0, watched.stderr
    churn = json.loads(watched.stdout)["churn"]
    assert churn["reads"] >= 5 and churn["span_s"] >= 5, churn
    assert churn["removed"] == 0 and churn["removed_per_hour"] == 0, churn  # the worker's series only grow
    assert churn["created_per_hour"] == pytest.approx(churn["created"] * 3600 / churn["span_s"], rel=1e-3, abs=0.1)

    table = cardinality(env=env)
    assert table.returncode == 0, table.stderr
    assert "Folded into __other__" in table.stdout and "node:" in table.stdout
    assert "gen_ai_server_request_duration_seconds" in table.stdout
    assert "churn needs" not in table.stdout and "--watch" in table.stdout

