"""The catalogue and the Grafana dashboards made from it, file by file."""

import json
import re
from pathlib import Path

import pytest

from fleetpulse.settings import load_settings
from fleetpulse.streams.panels.dashboards import DASHBOARDS, PANELS, problems
from fleetpulse.streams.panels.grafana import grafana_dashboard
from fleetpulse.streams.panels.macros import TimeRange, as_bound, as_grafana, variables

ROOT = Path(__file__).resolve().parents[4]
FOLDER = ROOT / "infra" / "grafana" / "dashboards"
REGENERATE = "fleetpulse dashboards --out infra/grafana/dashboards"


def test_the_catalogue_has_no_problems():
    assert problems() == []


def test_the_dashboards_the_issue_asks_for_are_there():
    assert [d.name for d in DASHBOARDS] == ["fleet", "model", "gpus", "drift", "alerts", "pipeline", "cardinality"]


@pytest.mark.parametrize("d", DASHBOARDS, ids=lambda d: d.name)
def test_the_checked_in_dashboard_is_the_catalogues(d):
    path = FOLDER / f"{d.uid}.json"
    assert path.exists(), f"{path} is missing: run `{REGENERATE}`"
    assert json.loads(path.read_text()) == grafana_dashboard(d, load_settings(environ={}).window_seconds), \
        f"{path} is stale: run `{REGENERATE}`"


def test_no_dashboard_file_is_left_over_from_a_removed_dashboard():
    assert sorted(p.name for p in FOLDER.glob("*.json")) == sorted(f"{d.uid}.json" for d in DASHBOARDS)


def _datasources(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                yield value
            yield from _datasources(value)
    elif isinstance(node, list):
        for item in node:
            yield from _datasources(item)


@pytest.mark.parametrize("path", sorted(FOLDER.glob("*.json")), ids=lambda p: p.name)
def test_each_dashboard_file_is_grafana_json_with_datasources_only_through_variables(path):
    board = json.loads(path.read_text())
    for key in ("uid", "title", "panels", "templating", "schemaVersion", "time"):
        assert key in board, key
    names = {v["name"] for v in board["templating"]["list"]}
    assert {"ds_clickhouse", "ds_prometheus"} <= names
    for ds in _datasources(board):
        assert isinstance(ds, dict) and re.fullmatch(r"\$\{ds_(clickhouse|prometheus)\}", ds["uid"]), ds
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for p in board["panels"]:
        grid = p["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and grid["h"] > 0
        assert p["type"] in ("timeseries", "stat", "table", "heatmap")
        assert p["targets"] and all(t.get("rawSql") or t.get("expr") for t in p["targets"])
    # No two panels overlap on Grafana's grid.
    cells = [(x, y) for p in board["panels"] for x in range(p["gridPos"]["x"], p["gridPos"]["x"] + p["gridPos"]["w"])
             for y in range(p["gridPos"]["y"], p["gridPos"]["y"] + p["gridPos"]["h"])]
    assert len(cells) == len(set(cells))


def test_every_catalogue_panel_is_in_a_dashboard_file_with_its_query():
    queries = set()
    for path in FOLDER.glob("*.json"):
        for p in json.loads(path.read_text())["panels"]:
            queries |= {t.get("rawSql") or t.get("expr") for t in p["targets"]}
    for panel in PANELS.values():
        assert (panel.sql or panel.promql) in queries, panel.name


@pytest.mark.parametrize("panel", [p for p in PANELS.values() if p.sql], ids=lambda p: p.name)
def test_every_sql_panel_expands_both_ways_and_reads_rollups_or_tables_it_should(panel):
    span = TimeRange(1_700_000_000, 1_700_003_600, 20)
    grafana = as_grafana(panel.sql, span, {name: ["x"] for name in variables(panel.sql)})
    bound = as_bound(panel.sql)
    assert "$" not in grafana and "$" not in bound
    # Percentiles come from bucket maps summed over the interval, never from stored percentiles.
    assert "request_stats" not in panel.sql
    assert panel.sql.count("quantile(") == panel.sql.count("fleetpulse_bucket_quantile(sumMap(")
    if "request_windows" in panel.sql:
        assert "request_windows_for(interval_s = $__interval_s)" in panel.sql


def test_heatmaps_and_time_series_start_with_time():
    for panel in PANELS.values():
        if panel.sql and panel.kind in ("timeseries", "heatmap"):
            assert re.match(r"SELECT (\$__timeInterval\(\w+\) AS )?time,", panel.sql), panel.name
