"""One panel's answer for the built-in pages.

A browser names a panel and gives a time range and filter values; it never
sends SQL. The panel's SQL is the catalogue's, with bound query parameters
where Grafana would put literals (macros.as_bound), and it runs on the
worker's read-only session, under the same limits as /query. A filter left
out means every value, as Grafana's "All": the variable's own query lists
them. PromQL panels are asked of FLEETPULSE_PROMETHEUS_URL's query_range API.

The answer is ``{"panel", "kind", "unit", "interval_s", "columns", "rows"}``:
``time`` as unix seconds, other date-times as ISO text, NaN as null.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Mapping, Sequence

import orjson

from fleetpulse.clickhouse import ClickHouse
from fleetpulse.errors import PrometheusUnavailable, RequestError
from fleetpulse.streams.panels.catalogue import Panel
from fleetpulse.streams.panels.dashboards import VARIABLES
from fleetpulse.streams.panels.macros import (TimeRange, as_bound, choose_interval, parameters, rate_interval,
                                              variables)

MAX_POINTS = 300  # per series: about one per pixel column of a half-width chart
DEFAULT_RANGE_S = 15 * 60
MAX_RANGE_S = 400 * 86400
MAX_VALUES = 200  # per filter
MAX_VALUE_CHARS = 256
PROMETHEUS_TIMEOUT_S = 10


@dataclasses.dataclass(frozen=True)
class PanelRequest:
    span: TimeRange
    filters: dict[str, list[str]]  # the filters given, by variable name


def parse_request(query: Mapping[str, Sequence[str]], window_seconds: int, now: float) -> PanelRequest:
    """A page's query string, checked: ``from``, ``to`` (unix seconds; the last
    15 minutes when left out) and the variables (repeatable); RequestError
    naming what is wrong."""
    unknown = sorted(set(query) - {"from", "to"} - set(VARIABLES))
    if unknown:
        raise RequestError(f"unknown parameter {unknown[0][:50]!r}: use from, to (unix seconds) "
                           f"and {', '.join(sorted(VARIABLES))}")
    end = _seconds(query, "to", now)
    start = _seconds(query, "from", end - DEFAULT_RANGE_S)
    if not start < end:
        raise RequestError(f"from ({start}) must be before to ({end})")
    if end - start > MAX_RANGE_S:
        raise RequestError(f"the range is {(end - start) // 86400} days; at most {MAX_RANGE_S // 86400}")
    if end > now + 86400:
        raise RequestError("to is more than a day in the future")
    filters = {}
    for name in VARIABLES:
        values = list(query.get(name, ()))
        if len(values) > MAX_VALUES or any(len(v) > MAX_VALUE_CHARS for v in values):
            raise RequestError(f"{name}: at most {MAX_VALUES} values of at most {MAX_VALUE_CHARS} characters")
        if values:
            filters[name] = list(dict.fromkeys(values))
    interval = choose_interval(start, end, window_seconds, MAX_POINTS)
    return PanelRequest(TimeRange(start, end, interval), filters)


def _seconds(query: Mapping[str, Sequence[str]], name: str, default: float) -> int:
    given = list(query.get(name, ()))
    if not given:
        return int(default)
    if len(given) > 1:
        raise RequestError(f"{name} is given {len(given)} times")
    try:
        value = float(given[0])
    except ValueError:
        raise RequestError(f"{name}={given[0][:40]!r} is not a time in unix seconds") from None
    if not 0 <= value < 2**32:
        raise RequestError(f"{name}={given[0][:40]!r} is not a time in unix seconds")
    return int(value)


def variable_values(reader: ClickHouse, name: str, span: TimeRange) -> list[str]:
    """The values a filter offers over the range (what Grafana's "All" stands for)."""
    variable = VARIABLES.get(name)
    if variable is None:
        raise RequestError(f"no variable {name[:50]!r}; the variables are {', '.join(sorted(VARIABLES))}")
    rows = reader.query(as_bound(variable.sql), parameters=parameters(span, {})).result_rows
    return [str(row[0]) for row in rows]


def clickhouse_answer(reader: ClickHouse, panel: Panel, request: PanelRequest) -> dict:
    values = {name: request.filters.get(name) or variable_values(reader, name, request.span)
              for name in variables(panel.sql)}
    result = reader.query(as_bound(panel.sql), parameters=parameters(request.span, values))
    return _answer(panel, request.span, list(result.column_names), result.result_rows)


def prometheus_answer(url: str, panel: Panel, request: PanelRequest) -> dict:
    if not url:
        raise PrometheusUnavailable("this panel reads Prometheus: set FLEETPULSE_PROMETHEUS_URL to the Prometheus "
                                    "that scrapes the workers (e.g. http://127.0.0.1:9090)")
    span = request.span
    expr = panel.promql.replace("$__rate_interval", rate_interval(span.interval_s))
    query = urllib.parse.urlencode({"query": expr, "start": span.start, "end": span.end, "step": span.interval_s})
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/api/v1/query_range?{query}",
                                    timeout=PROMETHEUS_TIMEOUT_S) as response:
            body = orjson.loads(response.read())
    except (urllib.error.URLError, OSError, orjson.JSONDecodeError) as exc:
        raise PrometheusUnavailable(f"Prometheus at {url} did not answer ({_reason(exc)})") from None
    if body.get("status") != "success":
        raise PrometheusUnavailable(f"Prometheus refused the query: {str(body.get('error'))[:200]}")
    rows = [[int(t), _legend(panel.legend, series["metric"]), _number(v)]
            for series in body["data"]["result"] for t, v in series["values"]]
    rows.sort(key=lambda row: (row[0], row[1]))
    return _answer(panel, span, ["time", "series", "value"], rows)


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "reason", None) or exc)[:120]


def _legend(template: str, labels: dict) -> str:
    if not template:
        return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "value"
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: str(labels.get(m[1], "")), template)


def _number(text: str) -> float | None:
    value = float(text)
    return value if value == value and abs(value) != float("inf") else None


def _answer(panel: Panel, span: TimeRange, columns: list[str], rows: list) -> dict:
    time_column = columns.index("time") if "time" in columns else -1
    out = []
    for row in rows:
        row = [_plain(value, i == time_column) for i, value in enumerate(row)]
        out.append(row)
    return {"panel": panel.name, "kind": panel.kind, "unit": panel.unit, "interval_s": span.interval_s,
            "columns": columns, "rows": out}


def _plain(value, as_seconds: bool):
    """A value JSON carries: date-times as unix seconds (``time``) or ISO text; maps as text."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.timestamp() if as_seconds else value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    return value
