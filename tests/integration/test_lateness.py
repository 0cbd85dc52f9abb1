"""Late data through the real worker: within the allowed lateness an event counts
as usual; later than that it still counts, as a correction (late = 1), and is
counted in fleetpulse_late_events_total. Nothing is dropped."""

from __future__ import annotations

import orjson
import pytest
from confluent_kafka import Producer

from tests.clock import RECENT_HOUR
from tests.integration.workers import isolated_settings, metric_value
from tests.events import good_request

pytestmark = pytest.mark.integration


def send(producer: Producer, topic: str, times: list[float], tag: str) -> None:
    for i, ts in enumerate(times):
        event = good_request(**{"request.id": f"{tag}-{i}", "timestamp": ts})
        producer.produce(topic, orjson.dumps(event), partition=0)  # one partition: one watermark
    assert producer.flush(30) == 0


def test_late_events_are_kept_as_corrections(kafka_settings, tmp_path_factory, start_worker):
    tmp = tmp_path_factory.mktemp("late")
    settings = isolated_settings(kafka_settings, tmp, allowed_lateness_seconds=30)
    worker = start_worker(settings)
    producer = Producer({"bootstrap.servers": settings.bootstrap})
    topic = settings.topic("requests")
    t0 = RECENT_HOUR
    send(producer, topic, [t0 + i for i in range(100)], "a")             # windows 0..90, high-water t0+99
    send(producer, topic, [t0 + 75.5] * 20, "within")                  # window 70 ends at 80 > 99-30: on time
    send(producer, topic, [t0 + 55.0] * 7 + [t0 + 3.0] * 5, "too-late")  # windows 50 and 0 ended by 69: late
    assert worker.wait_for("SELECT sum(requests) FROM request_stats", 132, timeout=60) == 132

    rows = {r["w"]: r for r in worker.query(
        f"SELECT toUnixTimestamp(window_start) - {int(t0)} AS w, requests, late_requests FROM request_stats")}
    assert rows[70] == {"w": 70, "requests": 30, "late_requests": 0}
    assert rows[50] == {"w": 50, "requests": 17, "late_requests": 7}
    assert rows[0] == {"w": 0, "requests": 15, "late_requests": 5}
    assert sum(r["late_requests"] for r in rows.values()) == 12
    assert metric_value(worker.wait_for_metric("fleetpulse_late_events_total", 12, topic=topic),
                        "fleetpulse_late_events_total", topic=topic) == 12
    high_water = metric_value(worker.metrics(), "fleetpulse_event_time_high_water_seconds", topic=topic, partition="0")
    assert high_water == t0 + 99
    rolled = worker.query("SELECT sum(requests) AS n, sum(late_requests) AS late FROM request_stats_rollup "
                          "WHERE grain = '1m'")
    assert rolled == [{"n": 132, "late": 12}]
