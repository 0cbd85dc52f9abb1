"""Drift detection through the real stream path: simulator -> Kafka -> worker ->
feature histograms in ClickHouse -> drift evaluation -> drift_stats and /metrics
gauges -> the alert rules (FeatureDrift) -> the alerts table and topic."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest
from confluent_kafka import Consumer

from fleetpulse.producers.simulator import Drift, SimulationConfig, run_simulation
from fleetpulse.schemas import validate_event
from fleetpulse.streams.alerting.engine import fingerprint
from tests.clock import RECENT_HOUR
from tests.integration.workers import isolated_settings, metric_value

pytestmark = pytest.mark.integration

DRIFTED = ("drift", "warning", "critical")


def simulate(settings, seconds: float, rate: float, drifts=()):
    config = SimulationConfig(nodes=2, models=1, rate=rate, duration_s=seconds, seed=11, start=RECENT_HOUR,
                              burst_every_s=0, window_seconds=settings.window_seconds, pace="fast",
                              drifts=tuple(drifts))
    return run_simulation(settings, config, progress=False)


def evaluations(worker, last_window: float, timeout: float = 180) -> list[dict]:
    """Wait until the worker has evaluated up to ``last_window``; every drift_stats row."""
    worker.wait_for(f"SELECT max(window) >= toDateTime({int(last_window)}) FROM drift_stats", 1, timeout=timeout)
    return worker.query("SELECT toUnixTimestamp(window) - {0} AS w, feature, psi, ks, js, n_ref, n_cur, decision "
                        "FROM drift_stats ORDER BY w, feature".format(int(RECENT_HOUR)))


def read_alerts(settings) -> list[dict]:
    consumer = Consumer({"bootstrap.servers": settings.bootstrap, "group.id": "alert-reader",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([settings.topic("alerts")])
    out = []
    while (msg := consumer.poll(5)) is not None:
        if not msg.error():
            out.append(orjson.loads(msg.value()))
    consumer.close()
    return out


@pytest.fixture(scope="module")
def drifted(kafka_settings, tmp_path_factory, start_worker):
    tmp = tmp_path_factory.mktemp("drift")
    settings = isolated_settings(kafka_settings, tmp, drift_window_minutes=1)
    worker = start_worker(settings)
    # 1000 events per 10 s window; at 450 s input tokens shift by 0.5 sigma and
    # 30% of the "stop" finishes become "length".
    simulate(settings, 900, 100.0, [Drift("input_tokens", 0.5, 450), Drift("finish_reason", 0.3, 450)])
    rows = evaluations(worker, RECENT_HOUR + 800)
    return settings, worker, rows


@pytest.mark.parametrize("feature", ["input_tokens", "finish_reason"])
def test_a_shift_is_detected_within_two_windows_of_its_onset(drifted, feature):
    _, _, rows = drifted
    detected = [r["w"] for r in rows if r["feature"] == feature and r["decision"] in DRIFTED]
    assert detected, f"{feature} never detected"
    assert 450 <= detected[0] <= 450 + 2 * 10, (feature, detected[:5])
    assert all(r["n_cur"] >= 5000 for r in rows if r["feature"] == feature and r["w"] >= 100)


def test_nothing_alarms_before_the_onset(drifted):
    _, _, rows = drifted
    before = [r for r in rows if r["w"] < 450 and r["decision"] in DRIFTED]
    assert len(before) <= 1, before
    assert {r["decision"] for r in rows if r["w"] < 50} <= {"insufficient", "stable"}


def test_gauges_and_alert_events_are_exported(drifted):
    """Drift alerts come from the alert rules alone: the same events on the
    topic and in the alerts table, with the engine's labels and fingerprints."""
    settings, worker, _ = drifted
    text = worker.wait_for_metrics(lambda t: 'fleetpulse_drift_psi{feature="input_tokens"' in t)
    model = "llama-3.1-8b-instruct"
    for name in ("fleetpulse_drift_psi", "fleetpulse_drift_ks", "fleetpulse_drift_js"):
        assert f'{name}{{feature="input_tokens",model="{model}"}}' in text
    assert metric_value(text, "fleetpulse_drift_evaluations_total", decision="stable") > 0
    on_topic = [a for a in read_alerts(settings) if a["alert.name"] == "FeatureDrift"]
    alerts = [a for a in on_topic if a["labels"]["feature"] in ("input_tokens", "finish_reason")]
    firing = [a for a in alerts if a["status"] == "firing"]
    assert {a["labels"]["feature"] for a in firing} == {"input_tokens", "finish_reason"}
    for alert in alerts:
        validate_event(alert, "alert")
        assert alert["labels"] == {"alertname": "FeatureDrift", "severity": "warning", "model": model,
                                   "feature": alert["labels"]["feature"]}
        assert alert["fingerprint"] == fingerprint(alert["labels"])
    # Once the reference (the previous minute) has drifted too, the alert resolves: one incident, not a storm.
    per_feature = [a["status"] for a in alerts if a["labels"]["feature"] == "input_tokens"]
    assert per_feature[:2] == ["firing", "resolved"]
    # Stored before published: every event on the topic is in the table.
    stored = worker.query("SELECT status, labels['feature'] AS feature, fingerprint, toUnixTimestamp(timestamp) AS t "
                          "FROM alerts WHERE alert_name = 'FeatureDrift'")
    assert {(a["status"], a["labels"]["feature"], a["fingerprint"], int(a["timestamp"])) for a in on_topic} <= {
        (r["status"], r["feature"], r["fingerprint"], r["t"]) for r in stored}


def test_baseline_is_built_from_stored_windows_and_versioned(drifted):
    settings, worker, _ = drifted
    env = {**os.environ, **worker.settings.to_environ()}
    for version in (1, 2):
        result = subprocess.run([sys.executable, "-m", "fleetpulse", "drift", "baseline", "--model",
                                 "llama-3.1-8b-instruct", "--from", str(RECENT_HOUR), "--to", str(RECENT_HOUR + 450)],
                                env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"baseline v{version} of llama-3.1-8b-instruct: input_tokens=45000")
    rows = worker.query("SELECT version, feature, length(counts) AS bins, arraySum(counts) AS n FROM drift_baselines "
                        "WHERE feature IN ('input_tokens', 'finish_reason') ORDER BY version, feature")
    assert [(r["version"], r["feature"], r["n"]) for r in rows] == [
        (1, "finish_reason", 45000), (1, "input_tokens", 45000), (2, "finish_reason", 45000), (2, "input_tokens", 45000)]
    assert all(r["bins"] >= 2 for r in rows)


def test_no_drift_for_a_thousand_windows_gives_at_most_one_false_alarm_per_feature(kafka_settings, tmp_path_factory,
                                                                                  start_worker):
    tmp = tmp_path_factory.mktemp("nodrift")
    settings = isolated_settings(kafka_settings, tmp, drift_window_minutes=1)
    worker = start_worker(settings)
    simulate(settings, 10_200, 30.0)  # 300 events per window
    rows = evaluations(worker, RECENT_HOUR + 10_100, timeout=300)
    judged = [r for r in rows if r["decision"] != "insufficient"]
    windows = {r["w"] for r in judged}
    assert len(windows) >= 1000, len(windows)
    alarms = {}
    for r in judged:
        if r["decision"] in DRIFTED:
            alarms[r["feature"]] = alarms.get(r["feature"], 0) + 1
    print(f"{len(windows)} windows judged; false alarms per feature: {alarms or 'none'}")
    assert all(n <= 1 for n in alarms.values()), alarms
