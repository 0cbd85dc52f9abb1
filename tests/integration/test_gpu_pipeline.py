"""Recorded NVML through the real sampler, Kafka and worker into ClickHouse:
the stored samples and the GPU windows equal the recording, a GPU alert rule
fires on them, and readings a real H100 gave land as read, with their gauges."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest

from fleetpulse.producers.gpu.recorded import H100_REAL, H100X2
from fleetpulse.producers.recorder import Recorder
from tests.integration.workers import isolated_settings, metric_value, read_dead_letters

pytestmark = pytest.mark.integration

RULES = """
rules:
  - name: GPUHot
    metric: gpu_temperature_max
    op: ">"
    threshold: 60
    for: 1
    keep_firing_for: 1
    severity: warning
    annotations: {summary: "GPU {{ gpu }} on {{ node }} at {{ value }} C"}
"""


def test_recorded_gpus_land_in_gpu_windows_and_alert(kafka_settings, tmp_path_factory, start_worker):
    tmp = tmp_path_factory.mktemp("gpu")
    rules = tmp / "rules.yml"
    rules.write_text(RULES)
    settings = isolated_settings(kafka_settings, tmp, window_seconds=1, allowed_lateness_seconds=1,
                                 alert_rules=str(rules))
    worker = start_worker(settings)
    ticks = json.loads(H100X2.read_text())["ticks"]
    env = {**os.environ, **worker.settings.to_environ()}
    sampler = subprocess.run([sys.executable, "-m", "fleetpulse", "gpu-sampler", "--recorded", str(H100X2),
                              "--count", str(len(ticks)), "--interval", "0.2", "--node", "gpu-node-1"],
                             env=env, capture_output=True, text=True, timeout=120)
    assert sampler.returncode == 0, sampler.stderr
    expected = 2 * len(ticks)
    assert worker.wait_for("SELECT count() FROM gpu_samples FINAL", expected, timeout=60) == expected

    temps = worker.query("SELECT gpu_index, max(temperature) AS t, min(temperature) AS lo, "
                         "countIf(ecc_volatile IS NULL) AS no_ecc FROM gpu_samples FINAL GROUP BY gpu_index "
                         "ORDER BY gpu_index")
    for row in temps:
        recorded = [t[row["gpu_index"]]["gpu.temperature"] for t in ticks]
        assert (row["t"], row["lo"]) == (max(recorded), min(recorded))
    assert [r["no_ecc"] for r in temps] == [0, len(ticks)]  # GPU 1 reports no ECC: null, not zero

    # Windows are written once the watermark (newest sample - 1 s) passes them: each
    # written one holds exactly its stored samples, and all but the newest are written.
    # (Windows close on the worker's 2 s tick, a late sample's window is rewritten
    # right after the sample is stored: poll.)
    windows, stored = [], []
    for _ in range(30):
        windows = worker.query("SELECT toUnixTimestamp(window_start) AS w, gpu_index, samples, temperature_max "
                               "FROM gpu_windows FINAL ORDER BY w, gpu_index")
        stored = worker.query("SELECT toUnixTimestamp(toStartOfSecond(timestamp)) AS w, gpu_index, "
                              "count() AS samples, max(temperature) AS temperature_max FROM gpu_samples FINAL "
                              "GROUP BY w, gpu_index ORDER BY w, gpu_index")
        if windows and windows == stored[:len(windows)] and len(stored) - len(windows) <= 2 * 3:
            break
        time.sleep(1)
    assert windows and windows == stored[:len(windows)]
    assert len(stored) - len(windows) <= 2 * 3  # at most the last 3 seconds (lateness 1 s) per GPU
    topic = settings.topic("gpu")
    assert metric_value(worker.wait_for_metric("fleetpulse_events_in_total", expected, topic=topic),
                        "fleetpulse_events_in_total", topic=topic) == expected

    # The rule engine starts at the present window; fresh samples must keep arriving for it to see them.
    live = subprocess.Popen([sys.executable, "-m", "fleetpulse", "gpu-sampler", "--recorded", str(H100X2),
                             "--count", "40", "--interval", "0.25", "--node", "gpu-node-1"], env=env)
    try:
        fired = worker.wait_for("SELECT count() > 0 FROM alerts WHERE alert_name = 'GPUHot' AND status = 'firing'",
                                1, timeout=60)
    finally:
        live.wait(60)
    assert fired == 1
    alert = worker.query("SELECT labels, annotations FROM alerts WHERE alert_name = 'GPUHot' LIMIT 1")[0]
    assert alert["labels"]["node"] == "gpu-node-1" and alert["labels"]["gpu"] in ("0", "1")
    assert alert["annotations"]["summary"].startswith(f"GPU {alert['labels']['gpu']} on gpu-node-1 at ")

    # Readings a real H100 gave PynvmlSource, through the same path: stored as read,
    # and the gauges show the GPU's newest written window.
    real = [tick[0] for tick in json.loads(H100_REAL.read_text())["ticks"]]
    sampler = subprocess.run([sys.executable, "-m", "fleetpulse", "gpu-sampler", "--recorded", str(H100_REAL),
                              "--count", str(len(real)), "--interval", "0.1", "--node", "real-h100"],
                             env=env, capture_output=True, text=True, timeout=120)
    assert sampler.returncode == 0, sampler.stderr
    where = "FROM gpu_samples FINAL WHERE node = 'real-h100'"
    assert worker.wait_for(f"SELECT count() {where}", len(real), timeout=60) == len(real)
    rows = worker.query(f"SELECT memory_used, power_usage, energy, clock_sm, throttle_reasons {where} ORDER BY timestamp")
    assert [(r["memory_used"], r["energy"], r["clock_sm"], r["throttle_reasons"]) for r in rows] == [
        (t["gpu.memory.used"], t["gpu.energy"], t["gpu.clock.sm"], t["gpu.throttle_reasons"]) for t in real]
    assert [r["power_usage"] for r in rows] == [pytest.approx(t["gpu.power.usage"], rel=1e-6) for t in real]
    gauge, newest = None, []
    for _ in range(30):
        newest = worker.query("SELECT power_avg FROM gpu_windows FINAL WHERE node = 'real-h100' "
                              "ORDER BY window_start DESC LIMIT 1")
        gauge = metric_value(worker.metrics(), "fleetpulse_gpu_power_watts", node="real-h100", gpu="0")
        if newest and gauge == pytest.approx(newest[0]["power_avg"]):
            break
        time.sleep(1)
    assert newest and gauge == pytest.approx(newest[0]["power_avg"])


def test_gpu_batches_split_by_bytes_and_too_old_samples_are_dead_lettered(kafka_settings, tmp_path_factory,
                                                                          start_worker):
    tmp = tmp_path_factory.mktemp("gpubytes")
    # Every message is over the byte limit: each one is written on its own; samples
    # older than a 1-day retention would be deleted by the TTL on insert.
    settings = isolated_settings(kafka_settings, tmp, batch_max_bytes=1024, windows_ttl_days=1)
    worker = start_worker(settings)
    now = time.time()
    fresh = [_sample(now - 600 + i // 4, i % 4) for i in range(2000)]
    old = [_sample(now - 3 * 86400 + i, 0) for i in range(30)]
    with Recorder(settings.bootstrap, settings.topic("gpu"), batch_events=100) as recorder:
        recorder.record_batch(fresh[:1000] + old + fresh[1000:], block=True)
    assert worker.wait_for("SELECT count() FROM gpu_samples FINAL", len(fresh), timeout=60) == len(fresh)

    letters = read_dead_letters(settings, len(old))
    assert len(letters) == len(old)
    reasons = {h["fleetpulse.reason"] for _, h in letters}
    assert all(re.match(r"events\[\d+\]\.timestamp: ", r) for r in reasons), reasons  # the place in the envelope
    assert {re.sub(r"^events\[\d+\]\.", "", r) for r in reasons} == {
        f"timestamp: {s['timestamp']} is older than ClickHouse keeps windows (FLEETPULSE_WINDOWS_TTL_DAYS=1); "
        "not stored" for s in old}
    topic = settings.topic("gpu")
    text = worker.wait_for_metric("fleetpulse_events_in_total", len(fresh), topic=topic)
    messages = metric_value(text, "fleetpulse_messages_in_total", topic=topic)
    assert messages >= 21  # 2030 samples, 100 per message
    assert metric_value(text, "fleetpulse_batches_total", topic=topic) == messages  # one write per message
    assert metric_value(text, "fleetpulse_events_in_total", topic=topic) == len(fresh)


def _sample(at: float, gpu: int) -> dict:
    return {"type": "gpu", "version": 1, "timestamp": at, "host.name": "node-1", "gpu.uuid": f"GPU-{gpu}",
            "gpu.index": gpu, "gpu.utilization": 50.0, "gpu.temperature": 40.0}
