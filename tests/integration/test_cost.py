"""Cost views (sql/016) on real chDB equal a hand computation from the price
table: request_cost and request_cost_rollup per model, gpu_cost per GPU window
(node price over GPU-type price), gpu_request_cost from gpu_efficiency."""

from __future__ import annotations

import pytest

from fleetpulse.clickhouse import ClickHouse
from fleetpulse.migrate import migrate
from fleetpulse.prices import load_prices, parse_prices
from fleetpulse.settings import load_settings
from fleetpulse.streams.windows.aggregate import aggregate
from fleetpulse.streams.windows.rows import WINDOW_COLUMNS, SourceSpan, window_block
from fleetpulse.streams.windows.tenants import TENANT_COLUMNS, aggregate_tenants, tenant_block
from tests.clock import RECENT_HOUR
from tests.events import request_columns

pytestmark = pytest.mark.integration

T0 = int(RECENT_HOUR)
PRICES = """
models:
  m-a: {input: 0.6, output: 2.4, cached_input: 0.15}
  m-b: {input: 1.0, output: 3.0}
gpus:
  H100: {hourly: 2.5, energy_kwh: 0.12}
nodes:
  n2: {hourly: 4.0}
"""
# (model, node, input tokens, output tokens, cached tokens), all in the window at T0, served by GPU 0.
REQUESTS = [("m-a", "n1", 1000, 200, 400), ("m-a", "n1", 3000, 50, 0), ("m-a", "n2", 500, 500, 500),
            ("m-b", "n1", 2000, 100, 1000), ("m-c", "n1", 10, 10, 0)]
TENANTS = ["t1", "t2", "t1", "t1", "t2"]


@pytest.fixture
def ch(chdb_path):
    db = ClickHouse(load_settings(environ={}, clickhouse_url=chdb_path, clickhouse_database="cost_test"))
    migrate(db, log=lambda _: None)
    load_prices(db, parse_prices("models: {old: {input: 9, output: 9}}"))
    load_prices(db, parse_prices(PRICES))  # replaces the first load whole
    events = [{"timestamp": T0 + 1.0 + i, "gen_ai.request.model": m, "host.name": n, "gpu.id": "0",
               "gen_ai.usage.input_tokens": i_, "gen_ai.usage.output_tokens": o,
               "gen_ai.usage.cache_read.input_tokens": c, "fleetpulse.tenant": TENANTS[i]}
              for i, (m, n, i_, o, c) in enumerate(REQUESTS)]
    span = [SourceSpan("cost", 0, 0, 0, T0 + 10.0)]
    columns = request_columns(events)
    db.insert_native("request_windows", WINDOW_COLUMNS, window_block(aggregate(columns, 10), 10, span),
                     dedup_token="cost:0")
    db.insert_native("tenant_windows", TENANT_COLUMNS, tenant_block(aggregate_tenants(columns, 10), 10, span),
                     dedup_token="cost:tenants:0")
    for node, name, joules in (("n1", "H100", 7200.0), ("n2", "H100", 3600.0), ("n3", "unpriced", 1.0)):
        db.command(f"INSERT INTO gpu_windows (window_start, window_seconds, node, gpu_uuid, gpu_index, gpu_name, "
                   f"samples, energy_joules, computed_at) VALUES (toDateTime({T0}), 10, '{node}', 'GPU-{node}', 0, "
                   f"'{name}', 10, {joules}, now64(6))")
    yield db
    db.command("DROP DATABASE cost_test")
    db.close()


def by_hand(model: str, p_in: float, p_out: float, p_cached: float) -> dict:
    rows = [r for r in REQUESTS if r[0] == model]
    i, o, c = (sum(r[k] for r in rows) for k in (2, 3, 4))
    cost = ((i - c) * p_in + c * p_cached + o * p_out) / 1e6
    return {"requests": len(rows), "cost": cost, "cost_per_request": cost / len(rows),
            "cost_per_million_tokens": cost / (i + o) * 1e6, "tokens_per_dollar": (i + o) / cost,
            "cache_hit_rate": c / i, "cache_savings": c * (p_in - p_cached) / 1e6}


EXPECTED = {"m-a": by_hand("m-a", 0.6, 2.4, 0.15), "m-b": by_hand("m-b", 1.0, 3.0, 1.0)}


def test_request_cost_per_model_is_the_hand_computation(ch):
    columns = ", ".join(EXPECTED["m-a"])
    for view in ("request_cost", "request_cost_rollup WHERE grain = '1m'", "request_cost_rollup WHERE grain = '1h'"):
        rows = ch.query(f"SELECT model, {columns} FROM {view} ORDER BY model").result_rows
        assert [r[0] for r in rows] == ["m-a", "m-b"], view  # m-c has no price: not priced at 0
        for model, *values in rows:
            assert dict(zip(EXPECTED[model], values)) == pytest.approx(EXPECTED[model], rel=1e-12), (view, model)
    assert EXPECTED["m-b"]["cache_savings"] == 0  # no cached price: no discount


def test_gpu_cost_is_time_at_the_hourly_price_plus_energy(ch):
    rows = ch.query("SELECT node, gpu_hours, energy_kwh, hourly_price, energy_price, gpu_cost FROM gpu_cost "
                    "WHERE grain = 'base' ORDER BY node").result_rows
    hours = 10 / 3600
    assert [r[0] for r in rows] == ["n1", "n2"]  # n3's GPU type has no price
    n1, n2 = rows
    assert n1[1:] == pytest.approx((hours, 0.002, 2.5, 0.12, hours * 2.5 + 0.002 * 0.12), rel=1e-12)
    # n2: the node's price wins over its GPU type's, and it has no energy price
    assert n2[1:] == pytest.approx((hours, 0.001, 4.0, 0.0, hours * 4.0), rel=1e-12)


def test_gpu_request_cost_prices_gpu_efficiency(ch):
    rows = ch.query("SELECT node, requests, output_tokens, gpu_cost, gpu_cost_per_request, output_tokens_per_dollar "
                    "FROM gpu_request_cost ORDER BY node").result_rows
    hours = 10 / 3600
    n1_cost, n2_cost = hours * 2.5 + 0.002 * 0.12, hours * 4.0
    assert [r[0] for r in rows] == ["n1", "n2"]
    assert rows[0][1:] == pytest.approx((4, 360, n1_cost, n1_cost / 4, 360 / n1_cost), rel=1e-12)
    assert rows[1][1:] == pytest.approx((1, 500, n2_cost, n2_cost, 500 / n2_cost), rel=1e-12)


def test_tenant_cost_is_the_hand_computation_and_adds_up_to_the_models(ch):
    prices = {"m-a": (0.6, 2.4, 0.15), "m-b": (1.0, 3.0, 1.0)}
    expected: dict[tuple[str, str], float] = {}
    for (model, _, i, o, c), tenant in zip(REQUESTS, TENANTS):
        if model in prices:
            p_in, p_out, p_cached = prices[model]
            key = (tenant, model)
            expected[key] = expected.get(key, 0.0) + ((i - c) * p_in + c * p_cached + o * p_out) / 1e6
    rows = ch.query("SELECT tenant, model, cost FROM tenant_cost ORDER BY tenant, model").result_rows
    assert {(t, m): cost for t, m, cost in rows} == pytest.approx(expected, rel=1e-12)  # m-c: no price, no row
    by_model = dict(ch.query("SELECT model, sum(cost) FROM tenant_cost GROUP BY model").result_rows)
    assert by_model == pytest.approx({m: EXPECTED[m]["cost"] for m in EXPECTED}, rel=1e-12)
