"""The GPU sampler against a real broker: every recorded sample arrives on the
gpu topic, valid, in order, keyed by node; the CLI exits 0, also on SIGTERM,
after flushing what it sampled."""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from fleetpulse.producers.gpu.recorded import H100X2, RecordedNvmlSource
from fleetpulse.producers.gpu.sampler import run_gpu_sampler
from fleetpulse.schemas import decode_message
from fleetpulse.settings import Settings
from tests.integration.workers import isolated_settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def settings(kafka_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return isolated_settings(kafka_settings, tmp_path_factory.mktemp("gpu"))


def events_of(settings: Settings, node: str) -> list[dict]:
    """Every event on the gpu topic keyed by ``node``, in order; each message must decode cleanly."""
    topic = settings.topic("gpu")
    consumer = Consumer({"bootstrap.servers": settings.bootstrap, "group.id": "unused", "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        events, done = [], {p for p, end in ends.items() if end == 0}
        deadline = time.monotonic() + 30
        while len(done) < len(ends) and time.monotonic() < deadline:
            for msg in consumer.consume(100, timeout=1.0):
                assert msg.error() is None, msg.error()
                if msg.offset() + 1 >= ends[msg.partition()]:
                    done.add(msg.partition())
                if msg.key() == node.encode():
                    decoded = decode_message(msg.value(), "gpu", settings.max_message_bytes)
                    assert decoded.dead == []
                    events.extend(decoded.events)
        assert len(done) == len(ends), "did not read the gpu topic to its end"
        return events
    finally:
        consumer.close()


def assert_replayed(events: list[dict], node: str) -> None:
    """``events`` are the recording's ticks from the first, in order (starting over at its end),
    stamped with ``node``."""
    readings = [reading for tick in RecordedNvmlSource().ticks for reading in tick]
    expected = list(itertools.islice(itertools.cycle(readings), len(events)))
    assert [{k: e[k] for k in r} for e, r in zip(events, expected)] == expected
    assert all(e["host.name"] == node for e in events)
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)


def run_cli(settings: Settings, *args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fleetpulse.producers.gpu", "--recorded", str(H100X2), *args],
                            env={**os.environ, **settings.to_environ()}, **popen)


def test_every_sample_arrives_valid_with_the_recorded_values(settings):
    assert run_gpu_sampler(settings, RecordedNvmlSource(), interval=0.01, count=12, node="gpu-node-1") == 0
    events = events_of(settings, "gpu-node-1")
    assert len(events) == 24
    assert_replayed(events, "gpu-node-1")
    assert [e["gpu.ecc.volatile"] for e in events if e["gpu.index"] == 1] == [None] * 12


def test_cli_with_a_recording_exits_0(settings):
    assert run_cli(settings, "--count", "3", "--interval", "0.01", "--node", "cli-node").wait(60) == 0
    events = events_of(settings, "cli-node")
    assert len(events) == 6
    assert_replayed(events, "cli-node")


def test_sigterm_stops_cleanly_after_flushing(settings, tmp_path):
    log_path = tmp_path / "sampler.log"
    with open(log_path, "wb") as log:
        proc = run_cli(settings, "--interval", "0.02", "--node", "term-node", stderr=log)
        deadline = time.monotonic() + 30
        while b"sampling every" not in log_path.read_bytes() and time.monotonic() < deadline:
            assert proc.poll() is None, log_path.read_text()
            time.sleep(0.05)
        time.sleep(1.5)  # past the recording's 30 ticks, so the replay starts over
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log_path.read_text()
    stopped = re.search(r"stopped, (\d+) ticks, (\d+) samples sent \((\d+) acked, 0 failed\)", log_path.read_text())
    assert stopped, log_path.read_text()
    ticks, sent, acked = map(int, stopped.groups())
    assert ticks > 1 and sent == acked == 2 * ticks
    events = events_of(settings, "term-node")
    assert len(events) == sent
    assert_replayed(events, "term-node")
