"""The simulated fleet's GPUs, driven by its requests, through the worker: GPU
windows and rollups, the request x GPU join (tokens per GPU-second, requests per
kWh, latency against utilization), and GPU gauges on /metrics."""

from __future__ import annotations

import time

import numpy as np
import pytest

from fleetpulse.producers.simulator import SimulationConfig, run_simulation
from tests.clock import RECENT_HOUR
from tests.integration.workers import advance_gpu_watermark, isolated_settings

pytestmark = pytest.mark.integration

EVENTS = 20_000


def test_requests_join_the_gpus_that_served_them(kafka_settings, tmp_path_factory, start_worker):
    tmp = tmp_path_factory.mktemp("gpujoin")
    settings = isolated_settings(kafka_settings, tmp)
    worker = start_worker(settings)
    # Light load (the GPUs do not saturate) and no failures (no 60 s timeouts spilling into other windows).
    config = SimulationConfig(nodes=2, models=1, rate=20.0, count=EVENTS, seed=5, burst_every_s=0, error_rate=0.0,
                              start=RECENT_HOUR,
                              window_seconds=settings.window_seconds, pace="fast", gpu_samples=True)
    run_simulation(settings, config, progress=False)
    # GPU windows are written when the watermark passes them: move it past the hour the run filled.
    advance_gpu_watermark(settings, RECENT_HOUR + 3600 + 2 * settings.allowed_lateness_seconds)
    assert worker.wait_for("SELECT sum(requests) FROM request_windows", EVENTS, timeout=120) == EVENTS
    # GPU samples come through their own topic and agent: wait for all of them
    # (2 nodes x 8 GPUs x the 1000 seconds the requests span).
    fleet = "SELECT count() FROM gpu_samples FINAL WHERE node != 'watermark'"
    assert worker.wait_for(fleet, 16 * (EVENTS // 20), timeout=120) >= 16_000
    samples = worker.scalar(fleet)
    assert samples % 16 == 0  # 2 nodes x 8 GPUs, every second

    for table in ("gpu_windows", "gpu_windows_1m", "gpu_windows_1h"):  # every sample in each level, once
        assert worker.wait_for(f"SELECT sum(samples) FROM {table} FINAL WHERE node != 'watermark'", samples,
                               timeout=60) == samples, table
    assert worker.wait_for("SELECT sum(requests) FROM gpu_efficiency", EVENTS, timeout=60) == EVENTS
    rows = worker.query("SELECT * FROM gpu_efficiency")
    assert {r["gpu"] for r in rows} == {str(i) for i in range(8)}  # every request found its GPU's window
    for r in rows:
        assert r["tokens_per_gpu_second"] == pytest.approx(r["output_tokens"] / 10)
        if r["energy_joules"] > 0:
            assert r["requests_per_kwh"] == pytest.approx(r["requests"] / (r["energy_joules"] / 3.6e6))
        else:
            assert r["requests_per_kwh"] is None
    # Energy: each window holds the increases of the intervals ending in it, so the
    # windows add up to the counter's whole increase over the run.
    per_gpu = worker.query("SELECT gpu_uuid, max(energy) - min(energy) AS total FROM gpu_samples FINAL "
                           "WHERE node != 'watermark' GROUP BY gpu_uuid ORDER BY gpu_uuid")
    windows = worker.query("SELECT gpu_uuid, sum(energy_joules) AS total FROM gpu_windows FINAL "
                           "WHERE node != 'watermark' GROUP BY gpu_uuid ORDER BY gpu_uuid")
    assert [r["gpu_uuid"] for r in windows] == [r["gpu_uuid"] for r in per_gpu]
    for w, p in zip(windows, per_gpu):
        assert w["total"] == pytest.approx(p["total"], rel=1e-9)
    # The GPUs follow the load: utilization tracks the seconds of requests they served.
    busy = np.array([r["requests"] * r["mean_latency"] for r in rows], dtype=float)
    utilization = np.array([r["utilization_avg"] for r in rows])
    correlation = np.corrcoef(busy, utilization)[0, 1]
    print(f"correlation of GPU utilization with request-seconds served: {correlation:.2f}")
    assert correlation > 0.5  # 0.60 with this seed: requests count in the window they end in, busy time where it ran

    text = ""
    for _ in range(30):
        text = worker.metrics()
        if "fleetpulse_gpu_utilization_percent{" in text:
            break
        time.sleep(1)
    gauges = [line for line in text.splitlines() if line.startswith("fleetpulse_gpu_power_watts{")]
    assert len(gauges) == 16, gauges
    assert all(90.0 <= float(line.rsplit(" ", 1)[1]) <= 700.0 for line in gauges)
