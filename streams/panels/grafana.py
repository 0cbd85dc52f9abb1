"""A catalogue dashboard as Grafana's dashboard JSON (pure).

Datasources are never named: each dashboard declares the datasource variables
``ds_clickhouse`` and ``ds_prometheus`` (Grafana offers every datasource of
the type and picks the default), and every panel and query variable points at
``${ds_clickhouse}`` or ``${ds_prometheus}``. So a dashboard imports into any
Grafana, whatever its datasources are called: the usual cause of "Datasource
not found". Queries are the catalogue's text, for the ClickHouse plugin
version in :data:`macros.PLUGIN_VERSION`.
"""

from __future__ import annotations

from fleetpulse.streams.panels.catalogue import Dashboard, Panel, Variable
from fleetpulse.streams.panels.macros import PLUGIN_VERSION

CLICKHOUSE_TYPE = "grafana-clickhouse-datasource"
CLICKHOUSE = {"type": CLICKHOUSE_TYPE, "uid": "${ds_clickhouse}"}
PROMETHEUS = {"type": "prometheus", "uid": "${ds_prometheus}"}
SCHEMA_VERSION = 39  # Grafana 11
_HEIGHT = {"stat": 4, "timeseries": 8, "heatmap": 8, "table": 8}
#: The plugin's query formats (grafana/sqlds FormatQueryOption): 0 time series, 1 table.
_FORMAT = {"timeseries": 0, "heatmap": 0, "stat": 1, "table": 1}


def grafana_dashboard(d: Dashboard, window_seconds: int = 10) -> dict:
    """The dashboard's JSON model; ``window_seconds`` is every panel's minimum interval."""
    panels, x, y, row_height = [], 0, 0, 0
    for pid, p in enumerate(d.panels, start=1):
        if x + p.width > 24:
            x, y, row_height = 0, y + row_height, 0
        height = _HEIGHT[p.kind]
        panels.append(_panel(pid, p, {"h": height, "w": p.width, "x": x, "y": y}, window_seconds))
        x, row_height = x + p.width, max(row_height, height)
    return {
        "uid": d.uid, "title": f"fleetpulse / {d.title}", "description": d.description,
        "tags": ["fleetpulse"], "timezone": "browser", "editable": True, "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION, "version": 1, "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"}, "timepicker": {},
        "annotations": {"list": []}, "links": [{"type": "dashboards", "tags": ["fleetpulse"], "asDropdown": True,
                                                "title": "fleetpulse", "includeVars": True, "keepTime": True}],
        "templating": {"list": [_datasource("ds_clickhouse", "ClickHouse", CLICKHOUSE_TYPE),
                                _datasource("ds_prometheus", "Prometheus", "prometheus"),
                                *(_variable(v) for v in d.variables)]},
        "panels": panels,
    }


def _datasource(name: str, label: str, plugin: str) -> dict:
    return {"name": name, "label": label, "type": "datasource", "query": plugin, "hide": 0,
            "refresh": 1, "regex": "", "current": {}, "options": []}


def _variable(v: Variable) -> dict:
    return {"name": v.name, "label": v.label, "type": "query", "datasource": CLICKHOUSE,
            "query": {"refId": f"variable_{v.name}", "queryType": "sql", "rawSql": v.sql}, "definition": v.sql,
            "refresh": 2,  # on a time range change
            "multi": True, "includeAll": True, "sort": 1, "hide": 0, "regex": "", "options": [],
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]}}


def _panel(pid: int, p: Panel, grid: dict, window_seconds: int) -> dict:
    datasource = PROMETHEUS if p.promql else CLICKHOUSE
    if p.promql:
        target = {"refId": "A", "datasource": datasource, "expr": p.promql, "legendFormat": p.legend,
                  "range": True, "editorMode": "code"}
    else:
        target = {"refId": "A", "datasource": datasource, "editorType": "sql", "rawSql": p.sql,
                  "format": _FORMAT[p.kind], "queryType": "table" if _FORMAT[p.kind] else "timeseries",
                  "pluginVersion": PLUGIN_VERSION}
    panel = {"id": pid, "type": p.kind, "title": p.title, "description": p.description, "gridPos": grid,
             "datasource": datasource, "interval": f"{window_seconds}s", "targets": [target],
             "fieldConfig": {"defaults": {"unit": p.unit}, "overrides": []}}
    if p.kind == "heatmap":  # the rows are already buckets, labelled le: show them, do not re-bucket
        panel["options"] = {"calculate": False, "rowsFrame": {"layout": "le"}, "yAxis": {"unit": p.unit},
                            "cellGap": 1, "color": {"mode": "scheme", "scheme": "Oranges"}}
    elif p.kind == "stat":
        panel["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                            "colorMode": "value", "graphMode": "none", "textMode": "value"}
    elif p.kind == "timeseries":
        panel["options"] = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                            "tooltip": {"mode": "multi", "sort": "desc"}}
    return panel
