"""10^5 distinct label values: the exported series stay under the cap, the
folded values are counted, and the worker's memory stays bounded."""

from __future__ import annotations

import pytest
from confluent_kafka import Producer

from fleetpulse.schemas import encode_batch
from tests.clock import RECENT_HOUR
from tests.integration.workers import isolated_settings, metric_value
from tests.events import good_request

pytestmark = pytest.mark.integration

DISTINCT = 100_000
CAP = 50


def test_a_hundred_thousand_nodes_export_at_most_the_cap(kafka_settings, tmp_path_factory, start_worker):
    tmp = tmp_path_factory.mktemp("cardinality")
    settings = isolated_settings(kafka_settings, tmp, metric_labels="model,node", metric_label_cap=CAP)
    worker = start_worker(settings)
    rss_before = worker.rss_bytes()
    producer = Producer({"bootstrap.servers": settings.bootstrap, "compression.type": "lz4"})
    events = [good_request(**{"host.name": f"node-{i:06d}", "request.id": f"r{i}", "timestamp": RECENT_HOUR + i * 0.001})
              for i in range(DISTINCT)]
    for start in range(0, DISTINCT, 500):
        producer.produce(settings.topic("requests"), encode_batch(events[start:start + 500]))
    assert producer.flush(60) == 0
    assert worker.wait_for("SELECT sum(requests) FROM request_windows", DISTINCT, timeout=180) == DISTINCT

    text = worker.wait_for_metric("fleetpulse_label_values_folded_total", DISTINCT - CAP, label="node")
    nodes = {line.split('node="')[1].split('"')[0] for line in text.splitlines()
             if line.startswith("gen_ai_server_request_duration_seconds_count{")}
    assert len(nodes) == CAP + 1 and "__other__" in nodes
    assert metric_value(text, "fleetpulse_label_values_folded_total", label="node") == DISTINCT - CAP
    series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    assert series < 5_000, series
    growth = worker.rss_bytes() - rss_before
    print(f"RSS grew {growth / 2**20:.0f} MiB for {DISTINCT} distinct nodes; {series} samples exported")
    assert growth < 300 * 2**20
    assert worker.scalar("SELECT uniqExact(node) FROM request_windows") == DISTINCT  # ClickHouse keeps them all
