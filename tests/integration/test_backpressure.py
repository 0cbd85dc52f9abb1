"""Backpressure, never loss: while ClickHouse is unreachable the worker pauses
consumption, retries with backoff and holds its memory; when ClickHouse comes
back it resumes, and the totals are exact."""

from __future__ import annotations

import time

import pytest

from fleetpulse.producers.simulator import SimulationConfig, run_simulation
from tests.clock import RECENT_HOUR
from tests.integration.workers import isolated_settings, metric_value, read_truth

pytestmark = pytest.mark.integration

BEFORE, DURING = 20_000, 150_000


def simulate(settings, tmp, count, seed, start):
    path = tmp / f"truth-{seed}.jsonl"
    config = SimulationConfig(count=count, seed=seed, start=start, rate=5000.0,
                              window_seconds=settings.window_seconds, pace="fast")
    assert run_simulation(settings, config, truth_path=path, progress=False).sent == count
    return read_truth(path)


def test_clickhouse_outage_pauses_then_resumes_without_loss(kafka_settings, tmp_path_factory, start_worker):
    tmp = tmp_path_factory.mktemp("outage")
    settings = isolated_settings(kafka_settings, tmp, batch_max_messages=100, health_stall_seconds=3)
    flag = tmp / "clickhouse-down"
    worker = start_worker(settings, command=["-m", "tests.integration.outage_worker"],
                          env={"OUTAGE_FLAG": str(flag)})
    truth = simulate(settings, tmp, BEFORE, seed=1, start=RECENT_HOUR)
    assert worker.wait_for("SELECT sum(requests) FROM request_windows", BEFORE, timeout=120) == BEFORE

    flag.touch()  # ClickHouse goes away
    later = simulate(settings, tmp, DURING, seed=2, start=RECENT_HOUR + 3600)
    time.sleep(6)
    rss_early = worker.rss_bytes()
    time.sleep(6)
    text = worker.metrics()
    rss_late = worker.rss_bytes()
    assert worker.scalar("SELECT sum(requests) FROM request_windows") == BEFORE, "nothing can be written"
    assert metric_value(text, "fleetpulse_consumer_paused") == 1
    assert metric_value(text, "fleetpulse_sink_retries_total", sink="clickhouse") >= 3
    assert metric_value(text, "fleetpulse_consumer_lag_messages") > 0, "the backlog waits in Kafka"
    status, health = worker.health()
    assert status == 503 and health["status"] == "stalled", health
    assert "waiting to be written" in health["reason"] and "not reachable (connection refused)" in health["reason"], health
    growth = rss_late - rss_early
    print(f"RSS during the outage: {rss_early / 2**20:.0f} MiB -> {rss_late / 2**20:.0f} MiB")
    assert growth < 32 * 2**20, f"memory grew {growth / 2**20:.0f} MiB while paused"
    assert worker.alive()

    flag.unlink()  # ClickHouse is back
    total = worker.wait_for("SELECT sum(requests) FROM request_stats", BEFORE + DURING, timeout=180)
    assert total == BEFORE + DURING, worker.log_tail()
    assert worker.health() == (200, {"status": "ok"})
    rows = {(r["w"], r["model"], r["node"]): r for r in worker.query(
        "SELECT toUnixTimestamp(window_start) AS w, model, node, requests, errors, input_tokens, output_tokens "
        "FROM request_stats")}
    expected = {**truth, **later}
    assert rows.keys() == expected.keys()
    for key, t in expected.items():
        assert [rows[key][c] for c in ("requests", "errors", "input_tokens", "output_tokens")] == \
               [t[c] for c in ("requests", "errors", "input_tokens", "output_tokens")], key
    text = worker.metrics()
    assert metric_value(text, "fleetpulse_consumer_paused") == 0
    assert "consumption resumed" in worker.log_tail(200)


def test_an_error_no_retry_can_fix_stops_the_worker_and_loses_nothing(kafka_settings, tmp_path_factory,
                                                                      start_worker):
    tmp = tmp_path_factory.mktemp("fatal")
    settings = isolated_settings(kafka_settings, tmp)
    flag = tmp / "clickhouse-broken"
    broken = start_worker(settings, command=["-m", "tests.integration.outage_worker"],
                          env={"OUTAGE_FLAG": str(flag), "OUTAGE_KIND": "fatal"})
    flag.touch()
    truth = simulate(settings, tmp, 5_000, seed=3, start=RECENT_HOUR)
    assert broken.proc.wait(timeout=60) == 70, broken.log_tail()
    assert "cannot make the batch starting at" in broken.log_tail(400)
    flag.unlink()
    fixed = start_worker(settings)
    assert fixed.wait_for("SELECT sum(requests) FROM request_stats", 5_000, timeout=120) == 5_000
    assert sum(t["requests"] for t in truth.values()) == 5_000


def test_sigterm_stops_a_worker_that_is_retrying_and_loses_nothing(kafka_settings, tmp_path_factory, start_worker):
    """A worker waiting for ClickHouse is retrying one batch, un-acked: SIGTERM
    stops it promptly, and the next worker reads that batch again."""
    tmp = tmp_path_factory.mktemp("sigterm")
    settings = isolated_settings(kafka_settings, tmp, health_stall_seconds=2)
    flag = tmp / "clickhouse-down"
    flag.touch()
    stuck = start_worker(settings, command=["-m", "tests.integration.outage_worker"], env={"OUTAGE_FLAG": str(flag)})
    simulate(settings, tmp, 2_000, seed=4, start=RECENT_HOUR)
    stuck.wait_for_metrics(lambda text: metric_value(text, "fleetpulse_sink_retries_total", sink="clickhouse") >= 2)
    deadline = time.monotonic() + 30
    while stuck.health()[0] != 503 and time.monotonic() < deadline:
        time.sleep(0.2)
    status, health = stuck.health()
    assert status == 503 and "not reachable" in health["reason"], health
    started = time.monotonic()
    code = stuck.stop(timeout=60)
    took = time.monotonic() - started
    print(f"SIGTERM to exit while retrying: {took:.1f}s, exit code {code}")
    assert took < 15, f"the worker took {took:.0f}s to stop:\n{stuck.log_tail()}"
    assert code == 0, stuck.log_tail()
    log = stuck.log_tail(100)
    assert "stopping while a batch waits to be written" in log and "consumption resumed" not in log, log

    flag.unlink()
    fixed = start_worker(settings)
    assert fixed.wait_for("SELECT sum(requests) FROM request_stats", 2_000, timeout=120) == 2_000, fixed.log_tail()
