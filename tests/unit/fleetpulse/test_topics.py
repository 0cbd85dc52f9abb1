"""Topic declarations and the unreachable-broker error, without a broker."""

from __future__ import annotations

import time

import pytest

from fleetpulse.errors import KafkaUnavailable
from fleetpulse.localkafka import free_port
from fleetpulse.settings import load_settings
from fleetpulse.topics import check_kafka, ensure_topics, topic_specs


def test_specs_follow_the_settings():
    settings = load_settings(environ={}, topic_prefix="x.", requests_partitions=12, requests_retention_hours=2)
    specs = {spec.name: spec for spec in topic_specs(settings)}
    assert set(specs) == {"x.requests", "x.gpu", "x.alerts", "x.deadletter"}
    assert specs["x.requests"].partitions == 12
    assert specs["x.requests"].config["retention.ms"] == str(2 * 3600 * 1000)


def test_fixed_topics_keep_their_partitions_and_retention():
    day_ms = 24 * 3600 * 1000
    specs = topic_specs(load_settings(environ={}))
    fixed = {spec.name: (spec.partitions, spec.config["retention.ms"]) for spec in specs}
    assert fixed["fleetpulse.gpu"] == (3, str(7 * day_ms))
    assert fixed["fleetpulse.alerts"] == (1, str(30 * day_ms))
    assert fixed["fleetpulse.deadletter"] == (1, str(14 * day_ms))


@pytest.mark.parametrize("call", [ensure_topics, check_kafka])
def test_closed_port_fails_fast_with_a_helpful_message(call, capfd):
    settings = load_settings(environ={}, kafka_port=free_port())  # nothing listens there
    started = time.monotonic()
    with pytest.raises(KafkaUnavailable) as caught:
        call(settings, timeout=1)
    assert time.monotonic() - started < 3
    message = str(caught.value)
    assert f"Kafka at {settings.bootstrap} is not reachable" in message
    assert "FLEETPULSE_KAFKA_BOOTSTRAP" in message and "fleetpulse kafka start" in message
    assert "FAIL" not in capfd.readouterr().err  # librdkafka's chatter stays out of the terminal
