"""sql/ on real chDB: idempotent migrations, and SQL quantiles that agree with
the Python sketch and stay within 1.1% of exact quantiles."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from fleetpulse.clickhouse import ClickHouse
from fleetpulse.migrate import load_migrations, migrate
from fleetpulse.settings import load_settings
from fleetpulse.streams.aggregate import aggregate, to_columns
from fleetpulse.streams.rows import WINDOW_COLUMNS, window_rows
from fleetpulse.streams.sketch import bucket_indices, exact_quantile, quantile

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ch(tmp_path_factory):
    # chDB allows one path per process: this module's is the only one pytest opens.
    path = tmp_path_factory.mktemp("sql") / "chdb"
    client = ClickHouse(load_settings(environ={}, clickhouse_url=f"chdb://{path}", raw_events_ttl_days=5))
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


def test_sql_quantiles_match_python_and_exact(ch):
    migrate(ch, log=lambda _: None)
    rng = np.random.default_rng(3)
    durations = rng.lognormal(-0.5, 1.0, 20_000)
    events = [{"timestamp": 1764000000.0 + (i % 10), "gen_ai.request.model": "m", "host.name": "n",
               "gen_ai.server.request.duration": float(d), "gen_ai.usage.input_tokens": 1,
               "gen_ai.usage.output_tokens": 2} for i, d in enumerate(durations)]
    # Four batches: the view must merge partial rows.
    for part in range(4):
        chunk = events[part::4]
        rows = window_rows(aggregate(to_columns(chunk), 10), 10, f"test:{part}")
        ch.insert("request_windows", rows, WINDOW_COLUMNS, dedup_token=f"test:{part}")
    # A retried insert with the same token is dropped, not double counted.
    retry = window_rows(aggregate(to_columns(events[0::4]), 10), 10, "test:0")
    ch.insert("request_windows", retry, WINDOW_COLUMNS, dedup_token="test:0")
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
