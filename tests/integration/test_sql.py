"""sql/ on real chDB: idempotent migrations, and SQL quantiles that agree with
the Python sketch and stay within 1.1% of exact quantiles."""

from __future__ import annotations

import importlib.resources
from collections import Counter

import numpy as np
import pytest

from fleetpulse.clickhouse import ClickHouse
from fleetpulse.migrate import load_migrations, migrate
from fleetpulse.schema import dump
from fleetpulse.settings import load_settings
from fleetpulse.streams.prometheus.pipeline import PipelineMetrics
from fleetpulse.streams.windows.aggregate import aggregate
from fleetpulse.streams.windows.rows import WINDOW_COLUMNS, SourceSpan, window_block, window_rows
from fleetpulse.streams.windows.sink import ClickHouseSink
from fleetpulse.streams.windows.sketch import bucket_indices, exact_quantile, quantile
from tests.events import request_columns
from tests.clock import RECENT_HOUR

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ch(chdb_path):
    client = ClickHouse(load_settings(environ={}, clickhouse_url=chdb_path, clickhouse_database="sql_test",
                                      raw_events_ttl_days=5))
    yield client
    client.close()


def test_migrate_is_idempotent_and_recorded(ch):
    first = migrate(ch, log=lambda _: None)
    again = migrate(ch, log=lambda _: None)
    assert [m.version for m in first] == [m.version for m in load_migrations()]
    assert again == []
    versions = [r[0] for r in ch.query("SELECT version FROM fleetpulse_migrations ORDER BY version").result_rows]
    assert versions == [m.version for m in load_migrations()]
    ddl = ch.query("SHOW CREATE TABLE request_events").result_rows[0][0]
    assert "toIntervalDay(5)" in ddl


def test_each_migration_survives_a_crash_before_its_record(chdb_path):
    """migrate() runs a file again when it crashed between the file's last
    statement and its record: every file, run twice in a row, in order, leaves a
    schema the next files and the TTL settings apply to."""
    ch = ClickHouse(load_settings(environ={}, clickhouse_url=chdb_path, clickhouse_database="migrate_twice"))
    try:
        ch.command("CREATE TABLE IF NOT EXISTS fleetpulse_migrations (version UInt32, name String, "
                   "applied_at DateTime('UTC') DEFAULT now()) ENGINE = MergeTree ORDER BY version")
        for m in load_migrations():
            for _ in range(2):
                for statement in m.statements():
                    ch.command(statement)
            ch.command("INSERT INTO fleetpulse_migrations (version, name) VALUES ({v:UInt32}, {n:String})",
                       parameters={"v": m.version, "n": m.name})
        assert migrate(ch, log=lambda _: None) == []  # nothing left; the TTLs apply to what is there
        tables = dict(ch.query("SELECT name, engine FROM system.tables WHERE database = currentDatabase() "
                               "AND name LIKE 'gpu_%'").result_rows)
        assert tables == {"gpu_samples": "ReplacingMergeTree", "gpu_windows": "ReplacingMergeTree",
                          "gpu_windows_1m": "ReplacingMergeTree", "gpu_windows_1h": "ReplacingMergeTree",
                          "gpu_efficiency": "View", "gpu_windows_for": "View", "gpu_cost": "View",
                          "gpu_request_cost": "View", "gpu_prices": "MergeTree"}
        key = ch.query("SELECT sorting_key FROM system.tables WHERE database = currentDatabase() "
                       "AND name = 'gpu_windows'").result_rows[0][0]
        assert key == "window_start, node, gpu_uuid, window_seconds"
    finally:
        ch.close()


def test_upgrade_from_the_gpu_windows_without_a_window_size(chdb_path):
    """A database that applied an earlier 010 (GPU window tables keyed without
    window_seconds, with rows in them): migrate() applies 011, which replaces
    them with the tables the writer uses now, and 012 and 013; the schema is then
    sql/schema.sql, as in a new database."""
    ch = ClickHouse(load_settings(environ={}, clickhouse_url=chdb_path, clickhouse_database="migrate_upgrade"))
    try:
        migrate(ch, log=lambda _: None)
        ch.command("DELETE FROM fleetpulse_migrations WHERE version >= 10")
        for table in ("gpu_efficiency", "gpu_windows_1m", "gpu_windows_1h", "gpu_windows"):
            ch.command(f"DROP TABLE {table}")
        for table in ("gpu_windows", "gpu_windows_1m", "gpu_windows_1h"):  # the earlier 010's key and columns
            ch.command(f"CREATE TABLE {table} (window_start DateTime('UTC'), node LowCardinality(String), "
                       "gpu_uuid LowCardinality(String), samples UInt32, computed_at DateTime64(6, 'UTC')) "
                       "ENGINE = ReplacingMergeTree(computed_at) ORDER BY (window_start, node, gpu_uuid)")
            ch.command(f"INSERT INTO {table} VALUES (now(), 'node-1', 'GPU-a', 10, now64(6))")
        ch.command("INSERT INTO fleetpulse_migrations (version, name) VALUES (10, 'gpu_windows_written')")

        later = [m.version for m in load_migrations() if m.version > 13]  # files added since (tenants: 015)
        assert [m.version for m in migrate(ch, log=lambda _: None)] == [11, 12, 13, *later]
        for table in ("gpu_windows", "gpu_windows_1m", "gpu_windows_1h"):
            key, rows = ch.query("SELECT sorting_key, total_rows FROM system.tables WHERE database = "
                                 "currentDatabase() AND name = {t:String}", parameters={"t": table}).result_rows[0]
            assert (key, rows) == ("window_start, node, gpu_uuid, window_seconds", 0)  # refilled by the worker
        assert ch.query("SELECT count() FROM gpu_efficiency").result_rows == [(0,)]
        assert dump(ch) == importlib.resources.files("fleetpulse.sql").joinpath("schema.sql").read_text()
    finally:
        ch.close()


def test_sql_quantiles_match_python_and_exact(ch):
    migrate(ch, log=lambda _: None)
    rng = np.random.default_rng(3)
    durations = rng.lognormal(-0.5, 1.0, 20_000)
    events = [{"timestamp": RECENT_HOUR + (i % 10), "gen_ai.request.model": "m", "host.name": "n",
               "gen_ai.server.request.duration": float(d), "gen_ai.usage.input_tokens": 1,
               "gen_ai.usage.output_tokens": 2, "trace_id": "t"} for i, d in enumerate(durations)]
    # Four batches: the view must merge partial rows.
    for part in range(4):
        ch.insert_native("request_windows", WINDOW_COLUMNS, batch_block(events[part::4], "quantiles", part, 0),
                         dedup_token=f"test:{part}")
    # A retried insert with the same token is dropped, not double counted.
    ch.insert_native("request_windows", WINDOW_COLUMNS, batch_block(events[0::4], "quantiles", 0, 0), dedup_token="test:0")
    row = ch.query("SELECT requests, input_tokens, latency_p50, latency_p90, latency_p99 FROM request_stats "
                   "WHERE model = 'm'").result_rows
    assert len(row) == 1
    requests, input_tokens, p50, p90, p99 = row[0]
    assert (requests, input_tokens) == (20_000, 20_000)
    buckets = Counter(bucket_indices(durations).tolist())
    for q, got in ((0.5, p50), (0.9, p90), (0.99, p99)):
        assert got == pytest.approx(quantile(buckets, q), rel=1e-12)
        exact = exact_quantile(durations, q)
        assert abs(got - exact) <= 0.011 * exact


def batch_spans(events, topic, partition, offset):
    return [SourceSpan(topic, partition, offset, offset, max(e["timestamp"] for e in events))]


def batch_rows(events, topic, partition, offset):
    return window_rows(aggregate(request_columns(events), 10), 10, batch_spans(events, topic, partition, offset))


def batch_block(events, topic, partition, offset):
    """What the worker inserts: the batch's rows as one Native block."""
    return window_block(aggregate(request_columns(events), 10), 10, batch_spans(events, topic, partition, offset))


def request_events(n, seed, model="m"):
    rng = np.random.default_rng(seed)
    return [{"timestamp": RECENT_HOUR + float(rng.uniform(0, 7200)), "gen_ai.request.model": model,
             "host.name": f"n{rng.integers(3)}", "gen_ai.server.request.duration": float(rng.lognormal(-1, 1)),
             "gen_ai.server.time_to_first_token": float(rng.lognormal(-3, 1)),
             "gen_ai.usage.input_tokens": int(rng.integers(1, 1000)), "gen_ai.usage.output_tokens": int(rng.integers(1, 500)),
             "error.type": "timeout" if rng.random() < 0.05 else None, "trace_id": "t"} for _ in range(n)]


STATS = ("SELECT window_start AS g, model, node, requests, errors, input_tokens, output_tokens, latency_p50, "
         "latency_p999, ttft_p99 FROM request_stats_rollup WHERE model = '{model}' AND grain = '{grain}' ORDER BY g, model, node")


def rollup_from_view(ch, grain, model):
    return ch.query(STATS.format(grain=grain, model=model)).result_rows


def rollup_from_base(ch, bucket, model):
    return ch.query(f"""
        SELECT {bucket}(window_start) AS g, model, node, sum(requests), sum(errors), sum(input_tokens),
               sum(output_tokens), fleetpulse_bucket_quantile(sumMap(latency_buckets), 0.5),
               fleetpulse_bucket_quantile(sumMap(latency_buckets), 0.999),
               fleetpulse_bucket_quantile(sumMap(ttft_buckets), 0.99)
        FROM request_windows WHERE model = '{model}' GROUP BY g, model, node ORDER BY g, model, node""").result_rows


GRAINS = (("1m", "toStartOfMinute"), ("1h", "toStartOfHour"))


def test_rollups_and_views_agree_with_the_10s_windows(ch):
    migrate(ch, log=lambda _: None)
    events = request_events(5000, seed=5, model="r")
    for offset in range(5):
        ch.insert_native("request_windows", WINDOW_COLUMNS, batch_block(events[offset::5], "rollup", 0, offset),
                  dedup_token=f"rollup:{offset}")
    for grain, bucket in GRAINS:
        from_base = rollup_from_base(ch, bucket, "r")
        assert rollup_from_view(ch, grain, "r") == from_base and len(from_base) > 3
    per_model = ch.query("SELECT sum(requests), sum(errors) FROM request_stats_model WHERE model = 'r'").result_rows
    assert per_model == [(5000, sum(e["error.type"] is not None for e in events))]
    exact = np.array([e["gen_ai.server.request.duration"] for e in events])
    p999 = ch.query("SELECT fleetpulse_bucket_quantile(sumMap(latency_buckets), 0.999) FROM request_windows_1h "
                    "WHERE model = 'r'").result_rows[0][0]
    assert abs(p999 - exact_quantile(exact, 0.999)) <= 0.011 * exact_quantile(exact, 0.999)
    any_q = ch.query("SELECT sum(isFinite(latency)) FROM request_quantile(q = 0.9999) WHERE model = 'r'").result_rows
    assert any_q[0][0] > 0


def test_each_stats_view_reads_only_the_table_of_its_level(own_ch):
    """request_stats_of has a UNION branch per level; a branch whose level was
    not asked for must read nothing, or every query would read request_windows
    twice, or it and both rollups. Capped at 1.5 times its own tables' rows,
    each view still runs."""
    ch = own_ch
    events = request_events(2000, seed=13, model="levels")
    ch.insert_native("request_windows", WINDOW_COLUMNS, batch_block(events, "levels", 0, 0), dedup_token="levels:0")
    rows = dict(ch.query("SELECT name, total_rows FROM system.tables WHERE database = currentDatabase() "
                         "AND name IN ('request_windows', 'request_windows_1m', 'request_windows_1h')").result_rows)
    total = ch.query("SELECT sum(requests) FROM request_windows").result_rows[0][0]
    for view, own in (("request_stats", rows["request_windows"]), ("request_stats_model", rows["request_windows"]),
                      ("request_stats_rollup", rows["request_windows_1m"] + rows["request_windows_1h"])):
        got = ch.query(f"SELECT sum(requests) FROM {view}",
                       settings={"max_rows_to_read": own * 3 // 2, "read_overflow_mode": "throw"}).result_rows
        assert got == [(total * (2 if view == "request_stats_rollup" else 1),)], view


def test_rollup_catch_up_fills_in_exactly_what_the_views_missed(ch):
    """A crash between the base insert and its views leaves a rollup behind; the
    catch-up must fill it in exactly as the views would have."""
    migrate(ch, log=lambda _: None)
    events = request_events(3000, seed=9, model="c")
    ch.insert_native("request_windows", WINDOW_COLUMNS, batch_block(events[:1500], "catchup", 4, 10), dedup_token="c:1")
    before = {grain: rollup_from_view(ch, grain, "c") for grain, _ in GRAINS}
    for view in ("request_windows_1m_mv", "request_windows_1h_mv"):  # the views miss the next batch
        ch.command(f"DETACH TABLE {view}")
    ch.insert_native("request_windows", WINDOW_COLUMNS, batch_block(events[1500:], "catchup", 4, 11), dedup_token="c:2")
    for view in ("request_windows_1m_mv", "request_windows_1h_mv"):
        ch.command(f"ATTACH TABLE {view}")
    assert {grain: rollup_from_view(ch, grain, "c") for grain, _ in GRAINS} == before
    sink = ClickHouseSink(ch, PipelineMetrics())
    assert sink.catch_up_rollups("catchup", [4]) == 2
    for grain, bucket in GRAINS:
        assert rollup_from_view(ch, grain, "c") == rollup_from_base(ch, bucket, "c")
    assert sink.catch_up_rollups("catchup", [4]) == 0
    assert sink.read_progress("catchup")[4].next_offset == 12


def test_a_retried_batch_counts_once_in_the_windows_and_in_both_rollups(own_ch):
    """A retry after an ambiguous failure sends a batch again under its token:
    ClickHouse drops the repeat in request_windows, and the rollups must drop
    what their views would make of it too. A retry that finds the rollups
    without the batch (a crash between the base insert and its views) fills
    them in."""
    ch = own_ch
    events = request_events(1200, seed=21, model="retry")
    block = batch_block(events[:600], "retry", 2, 7)
    for _ in range(3):
        ch.insert_native("request_windows", WINDOW_COLUMNS, block, dedup_token="retry:7")
    for view in ("request_windows_1m_mv", "request_windows_1h_mv"):  # the views miss the next batch
        ch.command(f"DETACH TABLE {view}")
    later = batch_block(events[600:], "retry", 2, 8)
    ch.insert_native("request_windows", WINDOW_COLUMNS, later, dedup_token="retry:8")
    for view in ("request_windows_1m_mv", "request_windows_1h_mv"):
        ch.command(f"ATTACH TABLE {view}")
    ch.insert_native("request_windows", WINDOW_COLUMNS, later, dedup_token="retry:8")  # its retry
    for table in ("request_windows", "request_windows_1m", "request_windows_1h"):
        got = ch.query(f"SELECT sum(requests), max(offset_last) FROM {table} WHERE model = 'retry'").result_rows
        assert got == [(1200, 8)], table
    for grain, bucket in GRAINS:
        assert rollup_from_view(ch, grain, "retry") == rollup_from_base(ch, bucket, "retry")


def test_raw_events_of_150_days_are_written_once_however_often_the_batch_is(ch):
    """One valid envelope can hold events of more days than ClickHouse's
    max_partitions_per_insert_block (100): the sink writes it in runs of days,
    each with its own deduplication token, so a replay adds nothing."""
    import orjson

    from fleetpulse.schemas import encode_batch
    from fleetpulse.streams.windows.batch import RawMessage, process_batch
    from tests.events import good_request

    migrate(ch, log=lambda _: None)
    days = [good_request(**{"request.id": f"d{d}", "timestamp": RECENT_HOUR + d * 86400}) for d in range(150)]
    msgs = [RawMessage("days", 0, 0, orjson.dumps(good_request(timestamp=RECENT_HOUR))),
            RawMessage("days", 0, 1, encode_batch(days))]
    sink = ClickHouseSink(ch, PipelineMetrics())
    for _ in range(2):  # written, then replayed (a crash before the ack)
        sink.write(process_batch(msgs, {}, window_seconds=10, lateness=30, max_bytes=1 << 20, keep_events=True))
    count = "SELECT count(), uniqExact(toYYYYMMDD(timestamp)) FROM request_events {final} WHERE source_topic = 'days'"
    assert ch.query(count.format(final="")).result_rows == [(151, 150)]  # the replay's runs were dropped whole
    assert ch.query(count.format(final="FINAL")).result_rows == [(151, 150)]


def test_a_native_block_stores_exactly_what_row_inserts_store(ch):
    """The worker writes window rows as Native blocks built from arrays; the
    same rows inserted through clickhouse-connect's row path read back equal,
    maps, strings and all."""
    events = request_events(3000, seed=11, model="native-é")
    for i, e in enumerate(events):
        e.update({"error.type": ["timeout", "oom", None][i % 3], "gen_ai.operation.name": ["chat", None][i % 2],
                  "gpu.id": [None, "GPU-1"][i % 2], "gen_ai.response.finish_reasons": [["stop"], ["length"], None][i % 3],
                  "fleetpulse.queue_time": [None, 0.0, 0.25][i % 3]})
    for table in ("native_a", "native_b"):
        ch.command(f"CREATE TABLE {table} AS request_windows ENGINE = MergeTree ORDER BY tuple()")
    ch.insert("native_a", batch_rows(events, "eq", 3, 7), WINDOW_COLUMNS, dedup_token="a")
    ch.insert_native("native_b", WINDOW_COLUMNS, batch_block(events, "eq", 3, 7), dedup_token="b")
    columns = ", ".join(WINDOW_COLUMNS)
    order = "ORDER BY window_start, model, node, gpu, late"
    rows_a = ch.query(f"SELECT {columns} FROM native_a {order}").result_rows
    rows_b = ch.query(f"SELECT {columns} FROM native_b {order}").result_rows
    assert len(rows_a) > 100 and rows_a == rows_b
    assert any(r[WINDOW_COLUMNS.index("errors_by_type")] for r in rows_b)


def test_quantile_function_on_literal_maps(ch):
    migrate(ch, log=lambda _: None)
    rows = ch.query("SELECT fleetpulse_bucket_quantile(map(toInt16(0), toUInt64(3), toInt16(32), toUInt64(1)), 0.5),"
                    " fleetpulse_bucket_quantile(map(toInt16(32), toUInt64(1), toInt16(0), toUInt64(3)), 0.9),"
                    " isNaN(fleetpulse_bucket_quantile(CAST(map(), 'Map(Int16, UInt64)'), 0.5)),"
                    " fleetpulse_bucket_quantile(map(toInt16(-32768), toUInt64(5)), 0.99)").result_rows[0]
    assert rows[0] == pytest.approx(quantile({0: 3, 32: 1}, 0.5))
    assert rows[1] == pytest.approx(quantile({0: 3, 32: 1}, 0.9))
    assert rows[2] == 1
    assert rows[3] == 0.0


@pytest.fixture
def own_ch(chdb_path, request):
    """A database of the test's own, for tests that read whole tables: the fleet
    watermark waits for every partition with rows, and the rollups hold what
    other tests of this module wrote (some write them directly)."""
    client = ClickHouse(load_settings(environ={}, clickhouse_url=chdb_path,
                                      clickhouse_database=f"sql_{request.node.name[5:40]}"))
    migrate(client, log=lambda _: None)
    yield client
    client.close()


def test_drift_against_a_frozen_baseline_and_yesterday(own_ch):
    """The evaluator's other references, on real ClickHouse: a baseline frozen
    from stored windows (versioned), and the same span 24 hours earlier."""
    import dataclasses

    from fleetpulse.streams.drift.baselines import build_baseline
    from fleetpulse.streams.drift.evaluator import DriftEvaluator
    from fleetpulse.streams.worker.query import open_reader

    ch = own_ch
    rng = np.random.default_rng(21)
    day_ago = RECENT_HOUR - 86400

    def window_events(start, n, mu):
        return [{"timestamp": start + float(rng.uniform(0, 10)), "gen_ai.request.model": "d", "host.name": "n",
                 "gen_ai.server.request.duration": float(rng.lognormal(-1, 0.5)),
                 "gen_ai.usage.input_tokens": int(rng.lognormal(mu, 0.9)) + 1, "gen_ai.usage.output_tokens": 10,
                 "trace_id": "t"}
                for _ in range(n)]

    offset = 0
    for base, mu_after in ((day_ago, 6.0), (RECENT_HOUR, 6.45)):  # yesterday stable; today shifts at +300 s
        for w in range(0, 600, 10):
            events = window_events(base + w, 500, 6.0 if w < 300 else mu_after)
            ch.insert_native("request_windows", WINDOW_COLUMNS, batch_block(events, "drift", 0, offset), dedup_token=f"d{offset}")
            offset += 1
    settings = dataclasses.replace(ch.settings, drift_features="input_tokens,latency", drift_reference="yesterday,d=baseline")
    reader = open_reader(settings)
    assert build_baseline(ch, reader, settings, "d", RECENT_HOUR, RECENT_HOUR + 300)["version"] == 1
    assert build_baseline(ch, reader, settings, "d", RECENT_HOUR, RECENT_HOUR + 300)["version"] == 2
    reader.close()
    evaluator = DriftEvaluator(settings, ch, set_gauges=lambda *a: None)
    while evaluator.tick():
        pass
    rows = ch.query(f"SELECT toUnixTimestamp(window) - {int(RECENT_HOUR)}, reference, decision FROM drift_stats "
                    "WHERE model = 'd' AND feature = 'input_tokens' AND window >= toDateTime({t:UInt32}) ORDER BY window",
                    parameters={"t": int(RECENT_HOUR)}).result_rows
    assert {r[1] for r in rows} == {"baseline:v2"}
    first_alarm = next(w for w, _, d in rows if d in ("drift", "warning", "critical"))
    assert 300 <= first_alarm <= 320
    assert all(d == "stable" for w, _, d in rows if w < 300)
    # Against the same span 24 hours earlier instead: stable before the shift, drift after.
    ch.command("TRUNCATE TABLE drift_windows")
    yesterday = DriftEvaluator(dataclasses.replace(settings, drift_reference="yesterday"), ch, lambda *a: None)
    while yesterday.tick():
        pass
    rows = ch.query(f"SELECT toUnixTimestamp(window) - {int(RECENT_HOUR)}, reference, decision FROM drift_stats "
                    "WHERE model = 'd' AND feature = 'input_tokens' AND window >= toDateTime({t:UInt32}) "
                    "AND window < toDateTime({u:UInt32}) ORDER BY window",
                    parameters={"t": int(RECENT_HOUR) + 50, "u": int(RECENT_HOUR) + 600}).result_rows
    assert {r[1] for r in rows} == {"yesterday"}
    assert all(d == "stable" for w, _, d in rows if w < 300)
    assert 300 <= next(w for w, _, d in rows if d in ("drift", "warning", "critical")) <= 320


@pytest.fixture
def drift_alerts_ch(chdb_path):
    client = ClickHouse(load_settings(environ={}, clickhouse_url=chdb_path, clickhouse_database="sql_drift_alerts",
                                      drift_features="input_tokens"))
    migrate(client, log=lambda _: None)
    yield client
    client.close()


def test_drift_alerts_come_from_the_rules_on_stored_drift_windows_only(drift_alerts_ch, monkeypatch):
    """The drift evaluator publishes nothing; the FeatureDrift rule alerts on
    its decisions, and reads a window only once its drift rows are stored: a
    backlog worked off over several ticks, or an insert that failed, must not
    read as "no drift" (which would resolve, or never fire, the alert)."""
    from fleetpulse.errors import ClickHouseUnavailable
    from fleetpulse.streams.alerting.evaluator import AlertEvaluator
    from fleetpulse.streams.drift import evaluator as drift

    ch = drift_alerts_ch
    rng = np.random.default_rng(5)
    for offset, w in enumerate(range(0, 600, 10)):  # input tokens shift at +300 s
        events = [{"timestamp": RECENT_HOUR + w + float(rng.uniform(0, 10)), "gen_ai.request.model": "d",
                   "host.name": "n", "gen_ai.server.request.duration": 0.5,
                   "gen_ai.usage.input_tokens": int(rng.lognormal(6.0 if w < 300 else 6.45, 0.9)) + 1,
                   "gen_ai.usage.output_tokens": 10, "trace_id": "t"} for _ in range(500)]
        ch.insert_native("request_windows", WINDOW_COLUMNS, batch_block(events, "drift", 0, offset),
                         dedup_token=f"a{offset}")
    monkeypatch.setattr(drift, "MAX_WINDOWS_PER_TICK", 5)  # the backlog takes several ticks
    evaluator = drift.DriftEvaluator(ch.settings, ch, set_gauges=lambda *a: None)
    published = []

    def publish(events):
        stored_until = evaluator.stored_span()[1]
        assert all(e["timestamp"] <= stored_until + 10 for e in events if "Drift" in e["alert.name"])
        published.extend(events)

    runner = AlertEvaluator(ch.settings, ch, publish, drift_stored=evaluator.stored_span)
    assert runner.tick() == 1  # request rules start at the present; drift rules wait for stored rows
    real_insert = ch.insert

    def drift_windows_down(table, *args, **kwargs):
        if table == "drift_windows":
            raise ClickHouseUnavailable("drift_windows: down")
        return real_insert(table, *args, **kwargs)

    for tick in range(200):
        if tick == 10:
            monkeypatch.setattr(ch, "insert", drift_windows_down)
            with pytest.raises(ClickHouseUnavailable):
                evaluator.tick()
            assert runner.tick() == 0, "read windows whose drift rows are not stored"
            monkeypatch.setattr(ch, "insert", real_insert)
        if not evaluator.tick():
            break
        assert runner.tick() > 0
    drifts = [(e["status"], e["timestamp"] - RECENT_HOUR) for e in published
              if e["alert.name"] == "FeatureDrift" and e["labels"] == {
                  "alertname": "FeatureDrift", "model": "d", "feature": "input_tokens", "severity": "warning"}]
    assert [status for status, _ in drifts[:2]] == ["firing", "resolved"], drifts
    assert 300 <= drifts[0][1] - 10 <= 320, drifts  # the window the shift began in, or the next two
    stored = ch.query("SELECT status FROM alerts WHERE alert_name = 'FeatureDrift' ORDER BY timestamp").result_rows
    assert [r[0] for r in stored][:2] == ["firing", "resolved"]


def test_silences_add_list_expire(ch):
    from fleetpulse.errors import ConfigError
    from fleetpulse.streams.alerting.silences import add_silence, expire_silence, handle, list_silences

    migrate(ch, log=lambda _: None)
    sid = add_silence(ch, {"alertname": "HighErrorRate", "model": "m"}, 3600, "deploy")
    listed = list_silences(ch)
    assert [(s["id"], s["matchers"], s["comment"], s["active"]) for s in listed] == \
        [(sid, {"alertname": "HighErrorRate", "model": "m"}, "deploy", True)]
    expire_silence(ch, sid)
    assert list_silences(ch) == []
    assert [s["id"] for s in list_silences(ch, include_expired=True)] == [sid]
    with pytest.raises(ConfigError, match="no silence with id 'nope'"):
        handle(ch, {"action": "expire", "id": "nope"})
    with pytest.raises(ConfigError, match="at least one --match"):
        add_silence(ch, {}, 60, "")
