"""The alert engine end to end, in real time: an error burst through the real
worker gives exactly one notification per alert group from a real Alertmanager,
and one resolve; a flapping signal gives none; a silence holds one back."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import orjson
import pytest
from confluent_kafka import Consumer, Producer

from tests.integration.promstack import Alertmanager, WebhookReceiver
from tests.integration.workers import isolated_settings
from tests.unit.test_schemas import good_request

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


def second(producer, topic, error_rates: dict[str, float], per_model: int = 100) -> None:
    """One second of traffic, event time = now."""
    now = time.time()
    for model, rate in error_rates.items():
        for i in range(per_model):
            failed = i < rate * per_model
            event = good_request(**{"timestamp": now, "gen_ai.request.model": model, "request.id": f"{model}{now}{i}",
                                    "error.type": "internal" if failed else None})
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
