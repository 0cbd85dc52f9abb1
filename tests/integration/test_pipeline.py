"""End to end on a real broker and chDB: simulator -> Kafka -> worker -> request_stats.

Counts, errors and token sums must equal the simulator's ground truth exactly;
p50/p99 must be within the sketch's 1.1% of the exact quantiles of the events
that are actually on the topic (read back and recomputed here).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from fleetpulse.producers.simulator import SimulationConfig, run_simulation
from fleetpulse.schemas import decode_message
from fleetpulse.streams.windows.sketch import exact_quantile
from tests.clock import RECENT_HOUR
from tests.integration.workers import isolated_settings, metric_value

pytestmark = pytest.mark.integration

EVENTS = 200_000
START = RECENT_HOUR  # fixed within a run, inside every TTL
STATS_SQL = ("SELECT toUnixTimestamp(window_start) AS window_start, model, node, requests, errors, "
             "input_tokens, output_tokens, latency_p50, latency_p99, ttft_p50, ttft_p99, tpot_p50, tpot_p99 "
             "FROM request_stats")


def read_topic(settings, topic: str) -> list[bytes]:
    """Every message value on the topic, read with a plain confluent-kafka consumer."""
    consumer = Consumer({"bootstrap.servers": settings.bootstrap, "group.id": "reader-" + topic,
                         "enable.auto.commit": False})
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    ends = {}
    for p in meta.partitions:
        ends[p] = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
    consumer.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
    values, seen = [], defaultdict(int)
    while any(seen[p] < end for p, end in ends.items()):
        msg = consumer.poll(5)
        assert msg is not None, "timed out reading the topic back"
        if msg.error():
            continue
        values.append(msg.value())
        seen[msg.partition()] = msg.offset() + 1
    consumer.close()
    return values


@pytest.fixture(scope="module")
def pipeline(kafka_settings, tmp_path_factory, start_worker):
    tmp = tmp_path_factory.mktemp("pipeline")
    settings = isolated_settings(kafka_settings, tmp)
    worker = start_worker(settings)
    truth_path = tmp / "truth.jsonl"
    config = SimulationConfig(nodes=4, models=3, rate=5000.0, count=EVENTS, seed=42, start=START,
                              window_seconds=settings.window_seconds, pace="fast")
    result = run_simulation(settings, config, truth_path=truth_path, progress=False)
    assert result.sent == EVENTS
    total = worker.wait_for("SELECT sum(requests) FROM request_stats", EVENTS, timeout=300)
    assert total == EVENTS, f"request_stats has {total} of {EVENTS} requests:\n{worker.log_tail()}"
    yield settings, worker, truth_path
    assert worker.stop() == 0


def test_counts_errors_and_tokens_equal_ground_truth(pipeline):
    settings, worker, truth_path = pipeline
    truth = {(r["window_start"], r["model"], r["node"]): r
             for r in map(orjson.loads, truth_path.read_bytes().splitlines())}
    rows = {(r["window_start"], r["model"], r["node"]): r for r in worker.query(STATS_SQL)}
    assert rows.keys() == truth.keys()
    assert sum(t["errors"] for t in truth.values()) > 0, "the simulation should include errors"
    for key, expected in truth.items():
        got = rows[key]
        for column in ("requests", "errors", "input_tokens", "output_tokens"):
            assert got[column] == expected[column], (key, column)


def test_quantiles_within_one_point_one_percent_of_exact(pipeline):
    settings, worker, _ = pipeline
    groups = defaultdict(lambda: defaultdict(list))
    for raw in read_topic(settings, settings.topic("requests")):
        for e in decode_message(raw, "request", settings.max_message_bytes).events:
            key = (int(e["timestamp"] // settings.window_seconds * settings.window_seconds),
                   e["gen_ai.request.model"], e["host.name"])
            for column, field in (("latency", "gen_ai.server.request.duration"),
                                  ("ttft", "gen_ai.server.time_to_first_token"),
                                  ("tpot", "gen_ai.server.time_per_output_token")):
                if e.get(field) is not None:
                    groups[key][column].append(e[field])
    assert sum(len(g["latency"]) for g in groups.values()) == EVENTS
    checked = 0
    for row in worker.query(STATS_SQL):
        key = (row["window_start"], row["model"], row["node"])
        for column in ("latency", "ttft", "tpot"):
            values = np.array(groups[key][column])
            for q, name in ((0.5, "p50"), (0.99, "p99")):
                exact = exact_quantile(values, q)
                got = row[f"{column}_{name}"]
                assert abs(got - exact) <= 0.011 * exact, (key, column, name, got, exact)
                checked += 1
    assert checked >= 6 * len(groups)


def test_metrics_count_what_went_through(pipeline):
    settings, worker, _ = pipeline
    topic = settings.topic("requests")
    text = worker.wait_for_metric("fleetpulse_events_in_total", EVENTS, topic=topic)
    assert metric_value(text, "fleetpulse_events_in_total", topic=topic) == EVENTS
    assert metric_value(text, "fleetpulse_events_invalid_total") == 0
    assert f'fleetpulse_late_events_total{{topic="{topic}"}} 0.0' in text
    assert 'fleetpulse_sink_retries_total{sink="clickhouse"} 0.0' in text
    assert metric_value(text, "fleetpulse_batches_total", topic=topic) >= 1
    assert "fleetpulse_flush_duration_seconds_bucket" in text
    assert metric_value(text, "fleetpulse_consumer_lag_messages", topic=topic) == 0
