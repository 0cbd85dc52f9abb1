"""The simulated fleet's GPUs, driven by its requests, through the worker: GPU
windows and rollups, the request x GPU join (tokens per GPU-second, requests per
kWh, latency against utilization), and GPU gauges on /metrics."""

from __future__ import annotations

import numpy as np
import pytest

from fleetpulse.producers.simulator import SimulationConfig, run_simulation
from tests.clock import RECENT_HOUR
from tests.integration.workers import isolated_settings

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
    seconds = worker.wait_for("SELECT count() > 0 FROM gpu_samples", 1, timeout=60)
    assert seconds == 1
    assert worker.wait_for("SELECT sum(requests) FROM request_windows", EVENTS, timeout=120) == EVENTS
    # GPU samples come through their own topic and agent: wait for all of them
    # (2 nodes x 8 GPUs x the 1000 seconds the requests span).
    assert worker.wait_for("SELECT count() FROM gpu_samples FINAL", 16 * (EVENTS // 20), timeout=120) == 16_000
    samples = worker.scalar("SELECT count() FROM gpu_samples FINAL")
    assert samples % 16 == 0 and samples >= 16 * (EVENTS // 20)  # 2 nodes x 8 GPUs, every second

    rows = worker.query("SELECT * FROM gpu_efficiency(w = 10)")
    assert sum(r["requests"] for r in rows) == EVENTS  # every request found its GPU's window
    assert {r["gpu"] for r in rows} == {str(i) for i in range(8)}
    for r in rows:
        assert r["tokens_per_gpu_second"] == pytest.approx(r["output_tokens"] / 10)
        if r["energy_joules"] > 0:  # a window with a single sample has no energy increase to divide by
            assert r["requests_per_kwh"] == pytest.approx(r["requests"] / (r["energy_joules"] / 3.6e6))
        else:
            assert r["requests_per_kwh"] is None
    # The GPUs follow the load: utilization tracks the seconds of requests they served.
    busy = np.array([r["requests"] * r["mean_latency"] for r in rows], dtype=float)
    utilization = np.array([r["utilization_avg"] for r in rows])
    correlation = np.corrcoef(busy, utilization)[0, 1]
    print(f"correlation of GPU utilization with request-seconds served: {correlation:.2f}")
    assert correlation > 0.5  # 0.60 with this seed: requests count in the window they end in, busy time where it ran

    assert worker.scalar("SELECT sum(samples) FROM gpu_windows_1m") == samples
    assert worker.scalar("SELECT sum(samples) FROM gpu_windows_1h") == samples
    assert worker.wait_for("SELECT 1", 1) == 1
    text = ""
    for _ in range(30):
        text = worker.metrics()
        if "fleetpulse_gpu_utilization_percent{" in text:
            break
        import time
        time.sleep(1)
    gauges = [line for line in text.splitlines() if line.startswith("fleetpulse_gpu_power_watts{")]
    assert len(gauges) == 16, gauges
    assert all(90.0 <= float(line.rsplit(" ", 1)[1]) <= 700.0 for line in gauges)
