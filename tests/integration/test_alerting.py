"""The alert engine end to end, in real time: an error burst through the real
worker gives exactly one notification per alert group from a real Alertmanager,
and one resolve; a flapping signal gives none; a silence holds one back. Drift
decisions take the same path: the FeatureDrift rule, the alerts table,
Alertmanager, the alert webhook and silences."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import numpy as np
import orjson
import pytest
from confluent_kafka import Consumer, Producer

from fleetpulse.schemas import validate_event

from tests.integration.promstack import Alertmanager, WebhookReceiver
from tests.integration.workers import isolated_settings, until
from tests.events import good_request

pytestmark = pytest.mark.integration

RULES = """
rules:
  - name: HighErrorRate
    metric: error_rate
    op: ">"
    threshold: 0.05
    for: 2
    keep_firing_for: 3
    severity: warning
    annotations: {summary: "{{ model }} fails {{ value }}"}
"""


def second(producer, topic, error_rates: dict[str, float], per_model: int = 100, input_tokens=None) -> None:
    """One second of traffic, event time = now; ``input_tokens()`` draws each request's."""
    now = time.time()
    for model, rate in error_rates.items():
        for i in range(per_model):
            failed = i < rate * per_model
            extra = {"gen_ai.usage.input_tokens": input_tokens()} if input_tokens else {}
            event = good_request(**{"timestamp": now, "gen_ai.request.model": model, "request.id": f"{model}{now}{i}",
                                    "error.type": "internal" if failed else None, **extra})
            producer.produce(topic, orjson.dumps(event))
    producer.flush(10)
    time.sleep(max(0.0, 1.0 - (time.time() - now)))


def test_burst_pages_once_resolves_once_flapping_and_silenced_stay_quiet(kafka_settings, tmp_path_factory,
                                                                         start_worker):
    tmp = tmp_path_factory.mktemp("alerting")
    hook = WebhookReceiver()
    alertmanager = Alertmanager(tmp, hook.url)
    rules = tmp / "rules.yml"
    rules.write_text(RULES)
    settings = isolated_settings(kafka_settings, tmp, window_seconds=1, allowed_lateness_seconds=1,
                                 alert_rules=str(rules), alertmanager_url=alertmanager.url)
    worker = start_worker(settings)
    env = {**os.environ, **worker.settings.to_environ()}
    added = subprocess.run([sys.executable, "-m", "fleetpulse", "silence", "add", "--match", "model=quiet",
                            "--for", "1h", "--comment", "maintenance"], env=env, capture_output=True, text=True)
    assert added.returncode == 0, added.stderr
    listed = subprocess.run([sys.executable, "-m", "fleetpulse", "silence", "list"], env=env, capture_output=True,
                            text=True)
    assert "{'model': 'quiet'}" in listed.stdout and "maintenance" in listed.stdout
    producer = Producer({"bootstrap.servers": settings.bootstrap, "linger.ms": 5})
    topic = settings.topic("requests")
    try:
        for t in range(24):
            burst = 4 <= t < 12
            second(producer, topic, {"steady": 0.3 if burst else 0.0,   # one incident
                                     "flappy": 0.3 if t % 2 else 0.0,   # never two windows in a row
                                     "quiet": 0.3 if burst else 0.0})   # silenced
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
                a["status"] == "resolved" for n in hook.received for a in n["alerts"]):
            time.sleep(0.5)
        time.sleep(3)  # anything more would show up now
    finally:
        alertmanager.stop()
        hook.stop()

    notifications = [(n["status"], n["groupLabels"].get("model")) for n in hook.received]
    assert notifications == [("firing", "steady"), ("resolved", "steady")], hook.received
    alert = hook.received[0]["alerts"][0]
    assert alert["labels"] == {"alertname": "HighErrorRate", "model": "steady", "severity": "warning"}
    assert alert["annotations"]["summary"] == "steady fails 0.3"

    events = worker.query("SELECT alert_name, status, labels['model'] AS model FROM alerts ORDER BY timestamp")
    assert [(e["status"], e["model"]) for e in events] == [("firing", "steady"), ("resolved", "steady")]
    consumer = Consumer({"bootstrap.servers": settings.bootstrap, "group.id": "alerts-test",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([settings.topic("alerts")])
    on_topic = []
    while (msg := consumer.poll(5)) is not None:
        if not msg.error():
            on_topic.append(orjson.loads(msg.value()))
    consumer.close()
    rule_events = [(a["status"], a["labels"]["model"]) for a in on_topic if a["alert.name"] == "HighErrorRate"]
    assert rule_events == [("firing", "steady"), ("resolved", "steady")]


def test_a_drift_decision_is_an_alert_like_any_other_and_respects_a_silence(kafka_settings, tmp_path_factory,
                                                                            start_worker):
    """Input tokens of two models drift against a frozen baseline. The shipped
    FeatureDrift rule alerts for the one not silenced: in the alerts table, at
    Alertmanager and at the alert webhook; the silenced one drifted too, and
    nothing of it went anywhere."""
    tmp = tmp_path_factory.mktemp("drift_alerts")
    hook, every_alert = WebhookReceiver(), WebhookReceiver()
    alertmanager = Alertmanager(tmp, hook.url)
    settings = isolated_settings(kafka_settings, tmp, window_seconds=1, allowed_lateness_seconds=1,
                                 drift_reference="baseline", drift_features="input_tokens",
                                 alertmanager_url=alertmanager.url, alert_webhook_url=every_alert.url)
    worker = start_worker(settings)
    env = {**os.environ, **worker.settings.to_environ()}
    added = subprocess.run([sys.executable, "-m", "fleetpulse", "silence", "add", "--match", "alertname=FeatureDrift",
                            "--match", "model=quiet", "--for", "1h"], env=env, capture_output=True, text=True)
    assert added.returncode == 0, added.stderr
    producer = Producer({"bootstrap.servers": settings.bootstrap, "linger.ms": 5})
    topic = settings.topic("requests")
    rng = np.random.default_rng(3)
    models = {"loud": 0.0, "quiet": 0.0}
    try:
        start = int(time.time()) + 1
        while time.time() < start:
            time.sleep(0.05)
        for _ in range(8):
            second(producer, topic, models, input_tokens=lambda: int(rng.lognormal(6.0, 0.5)) + 1)
        end = int(time.time())  # each second() ends a second after its events: all are before this
        stable = ("SELECT sum(requests) FROM request_windows WHERE model = '{}' AND window_start >= toDateTime({}) "
                  "AND window_start < toDateTime({})")
        for model in models:
            expected = 8 * 100
            assert worker.wait_for(stable.format(model, start, end), expected, timeout=60) == expected
            frozen = subprocess.run([sys.executable, "-m", "fleetpulse", "drift", "baseline", "--model", model,
                                     "--from", str(start), "--to", str(end)], env=env, capture_output=True, text=True)
            assert frozen.returncode == 0, frozen.stderr
        for _ in range(10):  # three standard deviations more input tokens
            second(producer, topic, models, input_tokens=lambda: int(rng.lognormal(7.5, 0.5)) + 1)
        stored = until(lambda: worker.query("SELECT status, labels['model'] AS model, labels['feature'] AS feature "
                                            "FROM alerts WHERE alert_name = 'FeatureDrift'"),
                       what="a FeatureDrift alert in the alerts table")
        notified = until(lambda: [a for n in hook.received for a in n["alerts"]
                                  if a["labels"]["alertname"] == "FeatureDrift"], what="Alertmanager's notification")
        posted = until(lambda: [e for body in every_alert.received for e in body if e["alert.name"] == "FeatureDrift"],
                       what="the alert webhook's POST")
        at_alertmanager = alertmanager_alerts(alertmanager, "FeatureDrift")
    finally:
        alertmanager.stop()
        hook.stop()
        every_alert.stop()

    # Once the drifted traffic ends, the last windows hold too few requests to
    # judge and the alert may resolve while we look: "quiet" must appear in no
    # status, "loud" must have fired exactly once (and may have resolved since).
    assert [r for r in stored if r["status"] == "firing"] == [
        {"status": "firing", "model": "loud", "feature": "input_tokens"}], stored
    assert {r["model"] for r in stored} == {"loud"}, stored
    assert [(a["labels"]["model"], a["labels"]["feature"]) for a in notified if a["status"] == "firing"] == [
        ("loud", "input_tokens")], notified
    assert {a["labels"]["model"] for a in notified} == {"loud"}, notified
    assert [labels["model"] for labels in at_alertmanager] == ["loud"]
    assert [e["labels"]["model"] for e in posted if e["status"] == "firing"] == ["loud"], posted
    assert {e["labels"]["model"] for e in posted} == {"loud"}, posted
    validate_event(posted[0], "alert")
    # quiet drifted as much as loud: the silence is what kept it from everyone.
    decisions = worker.query("SELECT model, max(decision IN ('drift', 'warning', 'critical')) AS drifted "
                             "FROM drift_stats GROUP BY model ORDER BY model")
    assert decisions == [{"model": "loud", "drifted": 1}, {"model": "quiet", "drifted": 1}], decisions


def alertmanager_alerts(alertmanager, name: str) -> list[dict]:
    """The labels of the alerts Alertmanager holds under ``name``, silenced or not."""
    query = urllib.parse.urlencode({"filter": f'alertname="{name}"'})
    with urllib.request.urlopen(f"{alertmanager.url}/api/v2/alerts?{query}", timeout=10) as response:
        return [a["labels"] for a in json.load(response)]
