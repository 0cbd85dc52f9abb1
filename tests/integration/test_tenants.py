"""Tenants end to end through the real worker: 100,000 distinct tenants in one
window give exact per-tenant totals in ClickHouse, /metrics holds at most K+1
tenant series and they are the true heaviest tenants, and a spike of one
tenant fires exactly one TenantTrafficSpike alert, which resolves."""

from __future__ import annotations

import collections
import re
import time

import numpy as np
import pytest
from confluent_kafka import Producer

from fleetpulse.schemas import encode_batch
from fleetpulse.schemas.fields import OTHER
from tests.events import good_request
from tests.integration.workers import isolated_settings, metric_value, until

pytestmark = pytest.mark.integration

K = 5
HEAVY = {f"heavy-{i}": 500 - 20 * i for i in range(10)}
LIGHT = 100_000


def _event(t: float, tenant: str | None, i: int) -> dict:
    return good_request(**{"timestamp": t, "fleetpulse.tenant": tenant, "request.id": f"r{t}-{i}",
                           "gen_ai.usage.input_tokens": i % 13, "gen_ai.usage.output_tokens": i % 7,
                           "error.type": "internal" if i % 11 == 0 else None,
                           "gen_ai.request.model": "m-a" if i % 3 else "m-b"})


def _send(producer: Producer, topic: str, events: list[dict]) -> None:
    for lo in range(0, len(events), 500):
        producer.produce(topic, encode_batch(events[lo:lo + 500]), partition=0)
        producer.poll(0)
    assert producer.flush(60) == 0


def _tenant_series(text: str) -> dict[str, float]:
    return {m[1]: float(m[2]) for m in re.finditer(r'^fleetpulse_tenant_requests\{tenant="([^"]*)"\} (\S+)$',
                                                   text, re.MULTILINE)}


def test_tenants_exact_in_clickhouse_top_k_on_metrics_and_one_spike_alert(kafka_settings, tmp_path_factory,
                                                                          start_worker):
    tmp = tmp_path_factory.mktemp("tenants")
    settings = isolated_settings(kafka_settings, tmp, window_seconds=10, allowed_lateness_seconds=1,
                                 tenant_top_k=K, tenant_counters=100, tenant_baseline_windows=6)
    worker = start_worker(settings)
    producer = Producer({"bootstrap.servers": settings.bootstrap, "linger.ms": 5})
    topic = settings.topic("requests")
    base = float((int(time.time()) // 10) * 10 - 1800)

    # Window 0: 100,000 tenants of one request each and ten heavy hitters, shuffled.
    names = [f"light-{i:05d}" for i in range(LIGHT)] + [t for t, n in HEAVY.items() for _ in range(n)]
    order = np.random.default_rng(17).permutation(len(names)).tolist()
    events = [_event(base + 9.0 * k / len(names), names[j], k) for k, j in enumerate(order)]
    truth: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0, 0])
    for e in events:
        row = truth[e["fleetpulse.tenant"]]
        row[0] += 1
        row[1] += e["error.type"] is not None
        row[2] += e["gen_ai.usage.input_tokens"]
        row[3] += e["gen_ai.usage.output_tokens"]
    _send(producer, topic, events + [_event(base + 12, None, 0)])  # the last one closes window 0

    assert worker.wait_for("SELECT sum(requests) FROM tenant_windows", len(events)) == len(events)
    rows = worker.query("SELECT tenant, sum(requests) AS r, sum(errors) AS e, sum(input_tokens) AS i, "
                        "sum(output_tokens) AS o FROM tenant_stats GROUP BY tenant")
    assert len(rows) == LIGHT + len(HEAVY)
    assert {row["tenant"]: [int(row[c]) for c in "reio"] for row in rows} == dict(truth)
    by_model = worker.query("SELECT model, sum(requests) AS r FROM tenant_stats GROUP BY model ORDER BY model")
    assert [int(row["r"]) for row in by_model] == [sum(1 for e in events if e["gen_ai.request.model"] == m)
                                                   for m in ("m-a", "m-b")]

    # A batch is counted in the summaries just after it is durable, when the
    # window may already read as closed: the next tick (2 s) exports it whole.
    text = worker.wait_for_metrics(lambda t: metric_value(t, "fleetpulse_tenant_window_start_seconds") == base
                                   and sum(_tenant_series(t).values()) == len(events))
    assert metric_value(text, "fleetpulse_tenant_window_start_seconds") == base
    series = _tenant_series(text)
    assert len(series) <= K + 1, series
    assert set(series) == {*list(HEAVY)[:K], OTHER}, series  # the true heaviest, exactly
    for tenant in list(HEAVY)[:K]:
        assert HEAVY[tenant] <= series[tenant] <= HEAVY[tenant] + LIGHT / 100  # the Space-Saving bound
    assert series[OTHER] == len(events) - sum(series[t] for t in list(HEAVY)[:K])

    # Windows 1-12: five steady tenants, 20 requests a window; steady-2 sends 20x in window 9.
    steady = [f"steady-{i}" for i in range(5)]
    for w in range(1, 13):
        batch = [_event(base + 10 * w + 0.5 + k * 0.01, tenant, k)
                 for tenant in steady for k in range(400 if (tenant == "steady-2" and w == 9) else 20)]
        _send(producer, topic, batch)
    _send(producer, topic, [_event(base + 10 * 13 + 2, None, 0)])  # closes every window up to 12

    spike = "SELECT status, labels['tenant'] AS tenant FROM alerts WHERE alert_name = 'TenantTrafficSpike' " \
            "ORDER BY timestamp, status"
    until(lambda: any(a["status"] == "resolved" for a in worker.query(spike)), timeout=120,
          what="the spike alert to resolve")
    until(lambda: worker.scalar("SELECT count() FROM tenant_windows WHERE window_start >= "
                                 f"toDateTime({int(base) + 120})") > 0, timeout=120, what="the last window")
    assert [(a["status"], a["tenant"]) for a in worker.query(spike)] == [("firing", "steady-2"),
                                                                         ("resolved", "steady-2")]


@pytest.fixture(scope="module")
def ch(chdb_path):
    from fleetpulse.clickhouse import ClickHouse
    from fleetpulse.migrate import migrate
    from fleetpulse.settings import load_settings

    client = ClickHouse(load_settings(environ={}, clickhouse_url=chdb_path, clickhouse_database="tenants_test"))
    migrate(client, log=lambda *_: None)
    yield client
    client.close()


def test_every_worker_exports_the_merge_of_all_workers_summaries(ch):
    """Two workers count different tenants of one window; each writes its
    Space-Saving summary, and both export the same merge, bounded to K+1
    series, with the true heaviest on top."""
    from fleetpulse.settings import load_settings
    from fleetpulse.streams.prometheus.tenants import TenantTopK
    from fleetpulse.streams.windows.tenants import aggregate_tenants
    from tests.clock import RECENT_HOUR
    from tests.events import request_columns

    settings = load_settings(environ={}, tenant_top_k=3, tenant_counters=20)
    w = int(RECENT_HOUR)
    first = [{"fleetpulse.tenant": t, "timestamp": w + 1.0} for t in ["a"] * 50 + ["b"] * 5 +
             [f"x{i}" for i in range(500)]]
    second = [{"fleetpulse.tenant": t, "timestamp": w + 2.0} for t in ["b"] * 40 + ["c"] * 30 + ["a"] * 1 +
              [f"y{i}" for i in range(500)]]
    workers = [TenantTopK(settings, worker=f"w{i}") for i in range(2)]
    for worker, events in zip(workers, (first, second)):
        worker.observe(aggregate_tenants(request_columns(events), 10))
    for worker in workers:
        worker.tick(ch, w - 10)  # the window is open: nothing is written
    assert ch.query("SELECT count() FROM tenant_summaries").result_rows[0][0] == 0
    for worker in workers:
        worker.tick(ch, w)  # closed: each writes its summary
    for worker in workers:
        worker.tick(ch, w)  # and reads the merge of both
    exported = [list(worker.collect())[0].samples for worker in workers]
    assert exported[0] == exported[1]
    values = {s.labels["tenant"]: s.value for s in exported[0]}
    assert list(values) == ["a", "b", "c", OTHER]
    assert values["a"] >= 51 and values["b"] >= 45 and values["c"] >= 30
    assert sum(values.values()) == len(first) + len(second)


def test_simulated_zipf_tenants_exact_totals_and_the_true_top_k(kafka_settings, tmp_path_factory, start_worker):
    """`fleetpulse simulate --tenants`: a known heavy-hitter law (Zipf over
    100,000 tenants); ClickHouse equals the simulator's truth tenant by
    tenant, and the exported top K of the window are the truth's."""
    import orjson

    from tests.integration.workers import run_simulator

    tmp = tmp_path_factory.mktemp("tenants-sim")
    settings = isolated_settings(kafka_settings, tmp, window_seconds=10, allowed_lateness_seconds=1,
                                 tenant_top_k=K, tenant_counters=50)
    worker = start_worker(settings)
    start = float((int(time.time()) // 10) * 10 - 600)
    truth_path = tmp / "truth.jsonl"
    sim = run_simulator(settings, "--count", "90000", "--rate", "3000", "--start", str(start), "--pace", "fast",
                        "--burst-every", "0", "--tenants", "100000", "--truth", str(truth_path))
    assert sim.wait(300) == 0, sim.stdout.read()
    rows = [orjson.loads(line) for line in truth_path.with_suffix(".tenants.jsonl").read_bytes().splitlines()]
    totals: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0, 0])
    for r in rows:
        totals[r["tenant"]] = [a + b for a, b in zip(totals[r["tenant"]], (r["requests"], r["errors"],
                                                                          r["input_tokens"], r["output_tokens"]))]
    producer = Producer({"bootstrap.servers": settings.bootstrap})
    _send(producer, settings.topic("requests"), [_event(start + 32, None, 0)])  # closes the three windows

    assert worker.wait_for("SELECT sum(requests) FROM tenant_windows", 90000) == 90000
    got = worker.query("SELECT tenant, sum(requests) AS r, sum(errors) AS e, sum(input_tokens) AS i, "
                       "sum(output_tokens) AS o FROM tenant_stats GROUP BY tenant")
    assert {row["tenant"]: [int(row[c]) for c in "reio"] for row in got} == dict(totals)

    last = start + 20
    window = sorted(((r["requests"], r["tenant"]) for r in rows if r["window_start"] == last), reverse=True)
    text = worker.wait_for_metrics(lambda t: metric_value(t, "fleetpulse_tenant_window_start_seconds") == last
                                   and sum(_tenant_series(t).values()) == sum(n for n, _ in window))
    series = _tenant_series(text)
    assert len(series) <= K + 1
    assert set(series) - {OTHER} == {t for _, t in window[:K]}
    assert series[OTHER] + sum(v for t, v in series.items() if t != OTHER) == sum(n for n, _ in window)
