"""Where the alert engine's events go: the alerts topic (for any subscriber,
e.g. a retrain job) and, when FLEETPULSE_ALERT_WEBHOOK_URL is set, an HTTP POST
of the same JSON events as an array."""

from __future__ import annotations

import logging

import orjson
from confluent_kafka import Producer

from fleetpulse.errors import KafkaUnavailable
from fleetpulse.streams.alerting.notify import post_json

log = logging.getLogger("fleetpulse.alerts")


class AlertSink:
    def __init__(self, bootstrap: str, topic: str, webhook_url: str = "", on_webhook_failure=lambda: None):
        self.topic = topic
        self._webhook_url = webhook_url
        self._on_webhook_failure = on_webhook_failure
        self._producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                                   "linger.ms": 5, "logger": logging.getLogger("fleetpulse.librdkafka")})

    def publish(self, alerts: list[dict]) -> None:
        for alert in alerts:
            self._producer.produce(self.topic, orjson.dumps(alert), key=alert["fingerprint"].encode())
        if self._producer.flush(30) > 0:
            raise KafkaUnavailable(f"alerts topic {self.topic}: delivery did not complete")
        for alert in alerts:
            log.warning("alert %s %s %s", alert["alert.name"], alert["status"], alert["labels"])
        if self._webhook_url:
            self._post(alerts)

    def _post(self, alerts: list[dict]) -> None:
        if not post_json(self._webhook_url, orjson.dumps(alerts), "webhook"):
            self._on_webhook_failure()

    def close(self) -> None:
        self._producer.flush(10)
