"""Panels, variables and dashboards (pure).

A panel's ClickHouse SQL is written as one would type it in Grafana's
ClickHouse plugin: the plugin's macros (``$__timeFilter(col)``,
``$__timeInterval(col)``, ``$__interval_s``, ``$__fromTime``, ``$__toTime``)
and Grafana's variables as ``${model:singlequote}`` inside ``IN (...)``.
Conventions every panel follows, which the pages rely on:

- ``timeseries`` and ``heatmap``: the first column is ``time``; String
  columns after it are series labels (the plugin turns this long form into
  one series per label set, and so do the pages); the rest are values.
  A heatmap's label column is ``le``, its value ``count``.
- ``stat``: one row of numbers; ``table``: any columns.
- Percentiles come from ``fleetpulse_bucket_quantile(sumMap(...), q)`` over
  each interval, never from averaging stored percentiles; request and GPU
  panels read ``request_windows_for``/``gpu_windows_for``, which pick the
  1 m or 1 h rollup when the interval allows.
"""

from __future__ import annotations

import dataclasses
import re

KINDS = ("timeseries", "stat", "table", "heatmap")
NAME = re.compile(r"[a-z][a-z0-9_]{1,62}")


@dataclasses.dataclass(frozen=True)
class Variable:
    """A dashboard filter: Grafana's query variable, the pages' multi-select."""

    name: str  # as in ${name:singlequote}
    label: str
    sql: str  # one String column of values; may use $__timeFilter


@dataclasses.dataclass(frozen=True)
class Panel:
    name: str  # unique across the catalogue; /api/panels/<name>
    title: str
    kind: str  # one of KINDS
    unit: str  # a Grafana unit id: reqps, s, percentunit, short, watt, celsius, ...
    sql: str = ""  # ClickHouse, with the plugin's macros
    promql: str = ""  # or PromQL (pipeline health), with $__rate_interval
    legend: str = ""  # PromQL legendFormat, e.g. "{{topic}}"
    width: int = 12  # of Grafana's 24 columns
    description: str = ""

    @property
    def source(self) -> str:
        return "prometheus" if self.promql else "clickhouse"


@dataclasses.dataclass(frozen=True)
class Dashboard:
    name: str  # the page's path, /d/<name>, and the Grafana uid's suffix
    title: str
    description: str
    variables: tuple[Variable, ...]
    panels: tuple[Panel, ...]

    @property
    def uid(self) -> str:
        return f"fleetpulse-{self.name}"
