"""sql/schema.sql is what a fresh migrate leaves, and what every older database
is left with after its own pending migrations: one schema, however a database
got there."""

from __future__ import annotations

import importlib.resources

import pytest

from fleetpulse.clickhouse import ClickHouse
from fleetpulse.migrate import load_migrations, migrate
from fleetpulse.schema import REGENERATE, dump
from fleetpulse.settings import load_settings
from tests.integration.releases import migrated_to

pytestmark = pytest.mark.integration

#: What sql/005, 008 and 009 made before they were cut down to what lasts: the
#: request_stats views written out in full (the full text does not matter, 012
#: replaces them), and the GPU view and materialized-view rollups that 010 drops.
OLD_005 = [f"CREATE VIEW {view} AS SELECT 1 AS x" for view in
           ("request_stats", "request_stats_model", "request_stats_rollup")]
OLD_008_009 = [
    "CREATE VIEW gpu_windows AS SELECT node, count() AS samples FROM gpu_samples GROUP BY node",
    "CREATE TABLE gpu_windows_1m (node String, samples SimpleAggregateFunction(sum, UInt64)) "
    "ENGINE = AggregatingMergeTree ORDER BY node",
    "CREATE TABLE gpu_windows_1h AS gpu_windows_1m",
    "CREATE MATERIALIZED VIEW gpu_windows_1m_mv TO gpu_windows_1m AS "
    "SELECT node, count() AS samples FROM gpu_samples GROUP BY node",
    "CREATE MATERIALIZED VIEW gpu_windows_1h_mv TO gpu_windows_1h AS "
    "SELECT node, count() AS samples FROM gpu_samples GROUP BY node",
    "CREATE VIEW gpu_efficiency AS SELECT node, gpu FROM request_windows",
]
#: The names those versions were recorded under: migrate() compares versions only.
OLD_NAMES = {5: "request_stats", 8: "gpu", 9: "gpu_rollups", 10: "gpu_drop_derived_views"}


@pytest.fixture
def database(chdb_path, request):
    """A fresh database of its own on the session's chDB, named after the test."""
    name = "schema_" + "".join(c if c.isalnum() else "_" for c in request.node.name)
    ch = ClickHouse(load_settings(environ={}, clickhouse_url=chdb_path, clickhouse_database=name))
    yield ch
    ch.command(f"DROP DATABASE {name}")
    ch.close()


def test_schema_sql_is_what_a_fresh_migrate_leaves(database):
    migrate(database, log=lambda _: None)
    shipped = importlib.resources.files("fleetpulse.sql").joinpath("schema.sql").read_text()
    assert dump(database) == shipped, f"sql/schema.sql is stale: regenerate it with `{REGENERATE}`"


def released_at(ch: ClickHouse, version: int, old_objects: list[str]) -> None:
    """``ch``'s database as the release before issue 15 left it at ``version``:
    today's files up to there (the same tables), the objects the old files made
    besides, and the versions recorded under their old names."""
    migrated_to(ch, version, OLD_NAMES)
    for statement in old_objects:
        ch.command(statement)


@pytest.mark.parametrize(("version", "old_objects", "pending"), [
    (13, [], []),  # the release before this one: no quality counts, tenants or prices
    (12, [], [13]),  # the rollups without their detail maps
    (11, OLD_005, [12, 13]),  # the request_stats views written out in full
    (9, OLD_005 + OLD_008_009, [10, 11, 12, 13]),  # GPU rollups as materialized views
], ids=["at_013", "at_012", "at_011", "at_009"])
def test_an_older_database_ends_with_the_same_schema(database, version, old_objects, pending):
    released_at(database, version, old_objects)
    later = [m.version for m in load_migrations() if m.version > 13]  # quality, tenants, prices, ...
    assert [m.version for m in migrate(database, log=lambda _: None)] == pending + later
    assert migrate(database, log=lambda _: None) == []
    shipped = importlib.resources.files("fleetpulse.sql").joinpath("schema.sql").read_text()
    assert dump(database) == shipped
