"""The rollups' detail maps (sql/013), on real chDB: the 1 minute and 1 hour
rollups hold exactly the base windows' queue, token, finish-reason and outcome
maps, whether the windows came before the migration (the backfill) or after
(the materialized views); queue time quantiles at every level of
request_stats_of; and request_windows_for / gpu_windows_for, which read the
grain that fits an interval, with the same totals at every grain."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from fleetpulse.clickhouse import ClickHouse
from fleetpulse.migrate import load_migrations, migrate
from fleetpulse.settings import load_settings
from fleetpulse.streams.prometheus.pipeline import PipelineMetrics
from fleetpulse.streams.windows.aggregate import aggregate
from fleetpulse.streams.windows.rows import WINDOW_COLUMNS, SourceSpan, window_block, window_rows
from fleetpulse.streams.windows.sink import ClickHouseSink
from fleetpulse.streams.windows.sketch import bucket_indices, exact_quantile, quantile
from tests.clock import RECENT_HOUR
from tests.events import request_columns
from tests.integration.releases import migrated_to

pytestmark = pytest.mark.integration

T0 = int(RECENT_HOUR)
GRAINS = (("request_windows_1m", "toStartOfMinute"), ("request_windows_1h", "toStartOfHour"))
DETAIL = ("queue_buckets", "input_tokens_buckets", "output_tokens_buckets", "finish_reasons", "outcomes")
REASONS = (["stop"], ["length"], ["content_filter"], None)


@pytest.fixture
def database(chdb_path, request):
    """A fresh, empty database of the test's own on the session's chDB: tests
    here compare whole tables, and one starts from an older schema."""
    name = "rollups_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:60]
    ch = ClickHouse(load_settings(environ={}, clickhouse_url=chdb_path, clickhouse_database=name))
    yield ch
    ch.command(f"DROP DATABASE {name}")
    ch.close()


def events(n: int, seed: int, span_s: float = 7200) -> list[dict]:
    """Requests over ``span_s`` seconds from T0, with every detail the maps hold:
    a quarter without queue time (it is optional), some queued for 0 s, finish
    reasons, empty and refused outputs, errors."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        queue = None if i % 4 == 0 else 0.0 if i % 8 == 1 else float(rng.lognormal(-4, 1.5))
        event = {"timestamp": T0 + float(rng.uniform(0, span_s)), "gen_ai.request.model": f"m{i % 2}",
                 "host.name": f"n{rng.integers(3)}", "gen_ai.server.request.duration": float(rng.lognormal(-1, 1)),
                 "gen_ai.usage.input_tokens": int(rng.integers(0, 4000)),
                 "gen_ai.usage.output_tokens": int(rng.integers(0, 500)) if i % 7 else 0,
                 "gen_ai.response.finish_reasons": REASONS[i % 4],
                 "error.type": "timeout" if rng.random() < 0.05 else None, "trace_id": "t"}
        if queue is not None:
            event["fleetpulse.queue_time"] = queue
        out.append(event)
    return out


#: The columns request_windows had before 014 added the quality counts.
BEFORE_014 = WINDOW_COLUMNS[:WINDOW_COLUMNS.index("analysed")]


def write(ch: ClickHouse, batch: list[dict], offset: int, topic: str = "rollups", partition: int = 0,
          late: bool = False, columns: tuple = WINDOW_COLUMNS) -> None:
    """One worker batch: its rows as one Native insert into request_windows
    (``late``: every event came after its window closed); ``columns``, fewer,
    as a row insert, the way a release before them wrote."""
    span = [SourceSpan(topic, partition, offset, offset, max(e["timestamp"] for e in batch))]
    block = aggregate(request_columns(batch), 10, late=np.full(len(batch), late))
    if columns != WINDOW_COLUMNS:
        rows = [r[:len(columns)] for r in window_rows(block, 10, span)]
        ch.insert("request_windows", rows, columns, dedup_token=f"{topic}:{partition}:{offset}")
        return
    ch.insert_native("request_windows", WINDOW_COLUMNS, window_block(block, 10, span),
                     dedup_token=f"{topic}:{partition}:{offset}")


def per_key(ch: ClickHouse, table: str, start: str, where: str = "1") -> list[tuple]:
    """Counts and detail maps summed per rollup key, in key order."""
    maps = ", ".join(f"sumMap({m})" for m in DETAIL)
    return ch.query(f"SELECT {start} AS g, model, node, source_topic, source_partition, sum(requests), sum(errors), "
                    f"{maps} FROM {table} WHERE {where} GROUP BY g, model, node, source_topic, source_partition "
                    "ORDER BY g, model, node, source_topic, source_partition").result_rows


def from_base(ch: ClickHouse, bucket: str, where: str = "1") -> list[tuple]:
    return per_key(ch, "request_windows", f"{bucket}(window_start)", where)


def test_rollups_hold_the_detail_maps_of_the_windows_exactly(database):
    ch = database
    migrate(ch, log=lambda _: None)
    sent = events(6000, seed=1)
    for offset in range(4):  # partial rows of several batches, merged by the rollups
        write(ch, sent[offset::4], offset)
    for rollup, bucket in GRAINS:
        assert per_key(ch, rollup, "window_start") == from_base(ch, bucket), rollup
        # ... and the maps are the events' own: queue time only where it was sent.
        queue, reasons, outcomes = ch.query(
            f"SELECT sumMap(queue_buckets), sumMap(finish_reasons), sumMap(outcomes) FROM {rollup}").result_rows[0]
        assert Counter(queue) == Counter(bucket_indices(np.array(
            [e["fleetpulse.queue_time"] for e in sent if "fleetpulse.queue_time" in e])).tolist())
        assert sum(queue.values()) == 4500
        assert reasons == dict(Counter((e["gen_ai.response.finish_reasons"] or ["none"])[0] for e in sent))
        assert outcomes == dict(Counter(outcome(e) for e in sent))


def outcome(event: dict) -> str:
    if event["error.type"] is not None:
        return "error"
    if event["gen_ai.usage.output_tokens"] == 0:
        return "empty"
    return "refused" if event["gen_ai.response.finish_reasons"] == ["content_filter"] else "answered"


def test_the_backfill_gives_windows_written_before_it_their_exact_maps(database):
    """A database at 012 with windows in it: 013 adds the maps to the rollups
    without changing a count. Run twice (a crash before its record), it adds
    them once. A batch the rollups missed (a crash between the base insert and
    the views) is left to catch_up_rollups, which inserts it whole, maps and
    all; after it, and after new batches, rollups and base agree exactly."""
    ch = database
    migrated_to(ch, 12)
    sent = events(8000, seed=2)
    for offset in range(3):
        write(ch, sent[offset:6000:3], offset, columns=BEFORE_014)
    for view in ("request_windows_1m_mv", "request_windows_1h_mv"):  # the views miss batch 3
        ch.command(f"DETACH TABLE {view}")
    write(ch, sent[6000:7000], 3, columns=BEFORE_014)
    for view in ("request_windows_1m_mv", "request_windows_1h_mv"):
        ch.command(f"ATTACH TABLE {view}")
    counts = {rollup: ch.query(f"SELECT window_start, model, node, sum(requests), sum(errors), sum(late_requests), "
                               f"sum(input_tokens), max(offset_last) FROM {rollup} GROUP BY ALL ORDER BY ALL").result_rows
              for rollup, _ in GRAINS}

    (m13,) = [m for m in load_migrations() if m.version == 13]
    for _ in range(2):
        for statement in m13.statements():
            ch.command(statement)
    ch.command("INSERT INTO fleetpulse_migrations (version, name) VALUES (13, {n:String})", parameters={"n": m13.name})
    assert [m.version for m in migrate(ch, log=lambda _: None)] == [m.version for m in load_migrations()
                                                                    if m.version > 13]

    for rollup, bucket in GRAINS:
        after = ch.query(f"SELECT window_start, model, node, sum(requests), sum(errors), sum(late_requests), "
                         f"sum(input_tokens), max(offset_last) FROM {rollup} GROUP BY ALL ORDER BY ALL").result_rows
        assert after == counts[rollup], f"{rollup}: the backfill changed a count"
        assert per_key(ch, rollup, "window_start") == from_base(ch, bucket, "offset_last <= 2"), rollup
        assert len(after) > 3
    sink = ClickHouseSink(ch, PipelineMetrics())
    assert sink.catch_up_rollups("rollups", [0]) == 2
    write(ch, sent[7000:], 4)  # through the new views
    for rollup, bucket in GRAINS:
        assert per_key(ch, rollup, "window_start") == from_base(ch, bucket), rollup
    total = ch.query("SELECT sum(requests), length(sumMap(queue_buckets)) FROM request_windows_1h").result_rows
    assert total[0][0] == 8000 and total[0][1] > 50


def test_queue_time_quantiles_at_every_level_are_within_the_sketch_error(database):
    """queue_p50 ... queue_p999 of request_stats, request_stats_model and both
    rollups: the Python sketch's quantile of the same values to the last bit, so
    within 1.1% of the exact order statistic; requests without a queue time
    count in no quantile."""
    ch = database
    migrate(ch, log=lambda _: None)
    rng = np.random.default_rng(3)
    queue = rng.lognormal(-3, 1.2, 12_000)
    queue[::10] = 0.0  # scheduled at once: the zero bucket
    sent = [{"timestamp": T0 + (i % 10), "gen_ai.request.model": "q", "host.name": "n",
             "gen_ai.server.request.duration": 1.0, "fleetpulse.queue_time": float(q), "trace_id": "t"}
            for i, q in enumerate(queue)]
    sent += [{"timestamp": T0 + 5, "gen_ai.request.model": "q", "host.name": "n",
              "gen_ai.server.request.duration": 1.0, "trace_id": "t"} for _ in range(3000)]  # no queue time
    for part in range(4):
        write(ch, sent[part::4], part, topic="queue")
    buckets = Counter(bucket_indices(queue).tolist())
    columns = "requests, queue_map, queue_p50, queue_p90, queue_p95, queue_p99, queue_p999"
    levels = {"request_stats": f"SELECT {columns} FROM request_stats",
              "request_stats_model": f"SELECT {columns} FROM request_stats_model",
              "1m": f"SELECT {columns} FROM request_stats_rollup WHERE grain = '1m'",
              "1h": f"SELECT {columns} FROM request_stats_rollup WHERE grain = '1h'"}
    for level, sql in levels.items():
        rows = ch.query(sql).result_rows
        assert len(rows) == 1, level  # one 10 s window of one node: one row at every level
        requests, queue_map, *got = rows[0]
        assert requests == 15_000 and queue_map == dict(buckets), level
        for q, value in zip((0.5, 0.9, 0.95, 0.99, 0.999), got):
            assert value == pytest.approx(quantile(buckets, q), rel=1e-12), (level, q)
            exact = exact_quantile(queue, q)
            assert abs(value - exact) <= 0.011 * exact, (level, q, value, exact)
    lowest = ch.query("SELECT fleetpulse_bucket_quantile(queue_map, 0.05) FROM request_stats").result_rows
    assert lowest == [(0.0,)]  # the 10% queued for 0 s


TOTALS = ("SELECT sum(requests), sum(errors), sum(late_requests), sum(input_tokens), sum(output_tokens), "
          + ", ".join(f"sumMap({m})" for m in ("errors_by_type", "latency_buckets", "ttft_buckets", "tpot_buckets",
                                               *DETAIL))
          + ", sum(latency_sum) FROM {source} WHERE window_start >= toDateTime({{x:UInt32}}) "
          "AND window_start <= toDateTime({{y:UInt32}})")
BASE = "(SELECT *, if(late = 1, requests, 0) AS late_requests FROM request_windows)"


def test_request_windows_for_reads_the_grain_of_the_interval_with_the_base_tables_totals(database):
    ch = database
    migrate(ch, log=lambda _: None)
    sent = events(6000, seed=4, span_s=3 * 3600)
    for offset in range(3):
        write(ch, sent[offset::3], offset)
    write(ch, [dict(e, timestamp=T0 + 600.5) for e in sent[:200]], 3, late=True)  # late corrections
    tables = dict(ch.query("SELECT name, total_rows FROM system.tables WHERE database = currentDatabase() "
                           "AND name LIKE 'request_windows%' AND total_rows IS NOT NULL").result_rows)
    grain = {10: "request_windows", 30: "request_windows", 90: "request_windows", 60: "request_windows_1m",
             300: "request_windows_1m", 3600: "request_windows_1h", 7200: "request_windows_1h"}
    for x, y in ((T0, T0 + 3 * 3600 - 1), (T0 + 3600, T0 + 2 * 3600 - 1)):  # everything; one hour
        exact = ch.query(TOTALS.format(source=BASE), parameters={"x": x, "y": y}).result_rows[0]
        assert exact[0] > 1000 and exact[2] == (200 if x == T0 else 0)
        for interval, table in grain.items():
            for argument, parameters in ((str(interval), {}), ("{n:UInt32}", {"n": interval})):  # literal, bound
                got = ch.query(TOTALS.format(source=f"request_windows_for(interval_s = {argument})"),
                               parameters={"x": x, "y": y, **parameters},
                               settings={"max_rows_to_read": tables[table] * 3 // 2, "read_overflow_mode": "throw"},
                               ).result_rows[0]
                assert got[:-1] == exact[:-1], (interval, argument)
                assert got[-1] == pytest.approx(exact[-1], rel=1e-9)
    # As a dashboard asks: per 5 minutes and model, from the 1 minute rollup.
    dashboard = ("SELECT toStartOfInterval(toDateTime(window_start), INTERVAL {n:UInt32} second) AS t, model, "
                 "sum(requests), fleetpulse_bucket_quantile(sumMap(latency_buckets), 0.99), "
                 "fleetpulse_bucket_quantile(sumMap(queue_buckets), 0.99) FROM {source} "
                 "WHERE window_start >= toDateTime({x:UInt32}) AND window_start <= toDateTime({y:UInt32}) "
                 "GROUP BY t, model ORDER BY t, model")
    parameters = {"n": 300, "x": T0 + 600, "y": T0 + 5999}
    base = ch.query(dashboard.replace("{source}", "request_windows"), parameters=parameters).result_rows
    rolled = ch.query(dashboard.replace("{source}", "request_windows_for(interval_s = {n:UInt32})"),
                      parameters=parameters).result_rows
    assert rolled == base and len(base) == 36


def test_request_windows_for_runs_on_the_read_only_query_session(database):
    """Dashboards on chDB ask through /query: the parameterized view passes its
    checks and runs read-only."""
    import orjson

    from fleetpulse.streams.worker.query import open_reader, run_query

    ch = database
    migrate(ch, log=lambda _: None)
    write(ch, events(500, seed=5), 0)
    reader = open_reader(ch.settings)
    try:
        lines = run_query(reader, "SELECT sum(requests) AS n, count() > 0 AS rows FROM request_windows_for(interval_s = 300) "
                                  "WHERE window_start >= toDateTime(0)").splitlines()
    finally:
        reader.close()
    assert [orjson.loads(line) for line in lines] == [{"n": 500, "rows": 1}]


GPU_COLUMNS = ("window_start, window_seconds, node, gpu_uuid, gpu_index, gpu_name, samples, utilization_avg, "
               "utilization_max, memory_used_max, memory_total, memory_used_ratio, temperature_max, power_avg, "
               "power_max, power_limit, clock_sm_avg, throttle_reasons_any, energy_joules, ecc_volatile_increase, "
               "xid_last")


def test_gpu_windows_for_reads_the_grain_of_the_interval_final(database):
    """Each interval reads its table FINAL: a recomputed window (a newer
    computed_at) replaces the one before it, so samples and energy add up to the
    same totals at every grain."""
    from datetime import datetime, timezone

    from fleetpulse.streams.gpu.samples import COLUMNS
    from fleetpulse.streams.gpu.windows import GpuWindowWriter

    ch = database
    migrate(ch, log=lambda _: None)
    rng = np.random.default_rng(6)
    energy, rows = 1e6, []
    for t in range(2 * 3600 + 300):
        energy += float(rng.uniform(200, 700))
        rows.append([datetime.fromtimestamp(T0 + t + 0.5, tz=timezone.utc), "node-1", "GPU-a", 0, "H100",
                     float(rng.uniform(0, 100)), 10.0, 2**34, 2**36, 60.0, 300.0, 700.0, energy, 1980.0, 2619.0,
                     0, 3, 0.0, 0.0, None])
    ch.insert("gpu_samples", rows, COLUMNS, "gpu")
    writer = GpuWindowWriter(ch.settings, ch)
    for _ in range(1000):
        if not writer.tick():
            break
    # A stale copy of a window (an older computed_at) must not count.
    for table in ("gpu_windows", "gpu_windows_1m", "gpu_windows_1h"):
        ch.command(f"INSERT INTO {table} SELECT * REPLACE (samples + 1000 AS samples, "
                   f"computed_at - INTERVAL 1 SECOND AS computed_at) FROM {table} FINAL ORDER BY window_start LIMIT 1")
    for interval, table in ((10, "gpu_windows"), (60, "gpu_windows_1m"), (120, "gpu_windows_1m"),
                            (3600, "gpu_windows_1h")):
        for argument, parameters in ((str(interval), {}), ("{n:UInt32}", {"n": interval})):
            got = ch.query(f"SELECT {GPU_COLUMNS} FROM gpu_windows_for(interval_s = {argument}) ORDER BY ALL",
                           parameters=parameters).result_rows
            assert got == ch.query(f"SELECT {GPU_COLUMNS} FROM {table} FINAL ORDER BY ALL").result_rows
            assert len(got) > 1
    totals = "SELECT sum(samples), sum(energy_joules) FROM gpu_windows_for(interval_s = {n:UInt32}) " \
             "WHERE window_start >= toDateTime({x:UInt32}) AND window_start < toDateTime({y:UInt32})"
    hours = [ch.query(totals, parameters={"n": n, "x": T0, "y": T0 + 7200}).result_rows[0] for n in (10, 60, 3600)]
    assert [h[0] for h in hours] == [7200] * 3
    assert hours[1][1] == pytest.approx(hours[0][1]) and hours[2][1] == pytest.approx(hours[0][1])
