"""The local broker and the topics, against a real Apache Kafka."""

from __future__ import annotations

import dataclasses
import os
import socket
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import ConfigResource

from fleetpulse.errors import LocalKafkaError
from fleetpulse.localkafka import LocalKafka, free_port
from fleetpulse.settings import Settings, load_settings
from fleetpulse.topics import admin_client, check_kafka, ensure_topics, topic_specs

pytestmark = pytest.mark.integration


def test_status_of_a_home_that_never_ran_a_broker(tmp_path):
    status = LocalKafka(load_settings(environ={}, home=tmp_path)).status()
    assert not status.running and status.pid is None
    assert "not running" in str(status)


def test_running_broker_status_and_idempotent_start(kafka_settings: Settings):
    broker = LocalKafka(kafka_settings)
    before = broker.status()
    assert before.running and before.bootstrap == kafka_settings.bootstrap
    assert f"running (pid {before.pid})" in str(before)

    assert broker.start().pid == before.pid  # no second broker
    check_kafka(kafka_settings, timeout=5)


def test_stale_pid_file_of_another_process_is_not_our_broker(tmp_path):
    broker = LocalKafka(load_settings(environ={}, home=tmp_path))
    broker.pid_file.parent.mkdir(parents=True)
    broker.pid_file.write_text(f"{os.getpid()}\n")  # alive, but not a Kafka broker
    assert not broker.status().running
    assert broker.stop() is False


def test_port_held_by_someone_else_is_a_clear_error(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(LocalKafkaError, match=f"port {port} on 127.0.0.1 is already in use"):
            LocalKafka(load_settings(environ={}, home=tmp_path, kafka_port=port)).start()


def test_topics_have_declared_partitions_and_retention(kafka_settings: Settings):
    ensure_topics(kafka_settings)
    admin = admin_client(kafka_settings)
    specs = topic_specs(kafka_settings)
    metadata = admin.list_topics(timeout=10).topics
    resources = [ConfigResource(ConfigResource.Type.TOPIC, spec.name) for spec in specs]
    configs = {res.name: fut.result(timeout=10) for res, fut in admin.describe_configs(resources).items()}
    for spec in specs:
        assert len(metadata[spec.name].partitions) == spec.partitions
        assert configs[spec.name]["retention.ms"].value == spec.config["retention.ms"]
    assert len(metadata[kafka_settings.topic("requests")].partitions) == kafka_settings.requests_partitions


def test_ensure_topics_again_creates_nothing(kafka_settings: Settings):
    ensure_topics(kafka_settings)
    assert ensure_topics(kafka_settings) == []


def test_ensure_topics_creates_only_what_is_missing(kafka_settings: Settings):
    fresh = dataclasses.replace(kafka_settings, topic_prefix=f"t{uuid.uuid4().hex[:8]}.")
    assert sorted(ensure_topics(fresh)) == sorted(spec.name for spec in topic_specs(fresh))
    assert ensure_topics(fresh) == []


def test_produce_consume_round_trip(kafka_settings: Settings):
    ensure_topics(kafka_settings)
    topic = kafka_settings.topic("requests")
    payload = uuid.uuid4().bytes
    producer = Producer({"bootstrap.servers": kafka_settings.bootstrap})
    producer.produce(topic, key=b"node-1", value=payload)
    assert producer.flush(10) == 0

    consumer = Consumer({"bootstrap.servers": kafka_settings.bootstrap, "group.id": f"g{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    try:
        received = _poll_for(consumer, payload, attempts=30)
    finally:
        consumer.close()
    assert received.key() == b"node-1"


def _poll_for(consumer: Consumer, payload: bytes, attempts: int):
    for _ in range(attempts):
        msg = consumer.poll(1.0)
        if msg is not None and msg.error() is None and msg.value() == payload:
            return msg
    raise AssertionError(f"message not consumed within {attempts} polls")


def test_stop_then_status_says_not_running(tmp_path, kafka_settings: Settings):
    settings = load_settings(environ={}, home=tmp_path, kafka_port=free_port(), cache_dir=kafka_settings.cache_dir)
    broker = LocalKafka(settings)
    broker.start()
    assert broker.status().running

    assert broker.stop() is True
    assert not broker.status().running
    assert not broker.pid_file.exists()
    assert broker.stop() is False  # stopping again is not an error
