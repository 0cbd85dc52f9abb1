"""The Grafana ClickHouse plugin's macros, expanded two ways (pure).

We follow grafana/clickhouse-datasource 4.20.0 (pkg/macros/macros.go at
commit 1d04063): ``$__timeFilter(c)`` is ``c >= toDateTime(from) AND c <=
toDateTime(to)`` in whole seconds, ``$__timeInterval(c)`` is
``toStartOfInterval(toDateTime(c), INTERVAL n second)`` with n the panel's
interval in whole seconds (at least 1), ``$__interval_s`` is n,
``$__fromTime``/``$__toTime`` are ``toDateTime(from)``/``toDateTime(to)``.
Grafana itself replaces ``${var:singlequote}`` before the plugin sees the
query, with every selected value quoted and ``'`` escaped as ``\\'``.

:func:`as_grafana` writes those literals, exactly as Grafana would send the
query: tests run it on chDB, so what Grafana runs is what we test.
:func:`as_bound` writes query parameters instead (``{__from:Int64}``,
``{model:Array(String)}``, ...): the worker's pages run the catalogue's SQL
that way, so no value from a browser is ever spliced into SQL text.
Any other ``$__`` macro is an error: the catalogue uses only these.
"""

from __future__ import annotations

import dataclasses
import math
import re

PLUGIN_VERSION = "4.20.0"

_MACRO = re.compile(r"\$__(\w+)(?:\(([^()]*)\))?")
_VARIABLE = re.compile(r"\$\{(\w+):singlequote\}")
_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_TAKES_COLUMN = {"timeFilter", "timeInterval"}
_BARE = {"interval_s", "fromTime", "toTime"}


class MacroError(ValueError):
    """A query uses a macro or a variable the catalogue does not support."""


@dataclasses.dataclass(frozen=True)
class TimeRange:
    start: int  # unix seconds, as the plugin truncates them
    end: int
    interval_s: int  # the panel's interval: Grafana's $__interval, in whole seconds

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise MacroError(f"the range ends ({self.end}) before it starts ({self.start})")
        if self.interval_s < 1:
            raise MacroError("the interval is at least one second")


#: The intervals a page may choose: multiples of each other from 10 s up, so a
#: 10 s window never straddles two points and rollups of 1 m and 1 h fit.
NICE_INTERVALS = (10, 20, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 604800)


def choose_interval(start: int, end: int, min_interval: int, max_points: int) -> int:
    """The interval for a range, as Grafana picks one: the smallest nice interval
    that keeps the points at or under ``max_points``, and not under ``min_interval``
    (the window size). A window size that does not divide the nice intervals
    (45 s, say) gets the smallest multiple of itself instead."""
    wanted = max((end - start) / max_points, min_interval)
    if 10 % min_interval == 0 or min_interval in NICE_INTERVALS:
        for nice in NICE_INTERVALS:
            if nice >= wanted and nice % min_interval == 0:
                return nice
    return math.ceil(wanted / min_interval) * min_interval


def variables(sql: str) -> list[str]:
    """The names of the Grafana variables a query uses, in order of first use."""
    return list(dict.fromkeys(_VARIABLE.findall(sql)))


def as_grafana(sql: str, span: TimeRange, values: dict[str, list[str]]) -> str:
    """The query as Grafana sends it to ClickHouse: every macro and variable a literal."""
    def macro(name: str, arg: str | None) -> str:
        if name == "timeFilter":
            return f"{arg} >= toDateTime({span.start}) AND {arg} <= toDateTime({span.end})"
        if name == "timeInterval":
            return f"toStartOfInterval(toDateTime({arg}), INTERVAL {span.interval_s} second)"
        if name == "interval_s":
            return str(span.interval_s)
        return f"toDateTime({span.start if name == 'fromTime' else span.end})"

    def variable(name: str) -> str:
        if not values.get(name):
            raise MacroError(f"no value for ${{{name}}}: Grafana sends at least one (or every one, for All)")
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in values[name])  # Grafana escapes ' only

    return _expand(sql, macro, variable)


def as_bound(sql: str) -> str:
    """The query with query parameters where Grafana puts literals; bind them with :func:`parameters`."""
    def macro(name: str, arg: str | None) -> str:
        if name == "timeFilter":
            return f"{arg} >= toDateTime({{__from:Int64}}) AND {arg} <= toDateTime({{__to:Int64}})"
        if name == "timeInterval":
            return f"toStartOfInterval(toDateTime({arg}), INTERVAL {{__interval_s:UInt32}} second)"
        if name == "interval_s":
            return "{__interval_s:UInt32}"
        return "toDateTime({__from:Int64})" if name == "fromTime" else "toDateTime({__to:Int64})"

    return _expand(sql, macro, lambda name: f"{{{name}:Array(String)}}")


def parameters(span: TimeRange, values: dict[str, list[str]]) -> dict[str, object]:
    """The query parameters of :func:`as_bound`'s query."""
    return {"__from": span.start, "__to": span.end, "__interval_s": span.interval_s, **values}


def _expand(sql: str, macro, variable) -> str:
    def one(match: re.Match) -> str:
        name, arg = match[1], match[2]
        if name in _TAKES_COLUMN:
            if arg is None or not _COLUMN.fullmatch(arg.strip()):
                raise MacroError(f"$__{name} takes one column name, as in $__{name}(window_start)")
            return macro(name, arg.strip())
        if name in _BARE and arg is None:
            return macro(name, None)
        raise MacroError(f"$__{name}{'(' + arg + ')' if arg is not None else ''} is not a macro the catalogue "
                         f"uses ($__timeFilter(c), $__timeInterval(c), $__interval_s, $__fromTime, $__toTime)")

    expanded = _VARIABLE.sub(lambda m: variable(m[1]), sql)  # Grafana first, then the plugin
    expanded = _MACRO.sub(one, expanded)
    leftover = re.search(r"\$\w+|\$\{[^}]*\}", expanded)
    if leftover:
        raise MacroError(f"{leftover[0]} is not expanded: write variables as ${{name:singlequote}}")
    return expanded


#: Prometheus's default scrape interval; the pages assume it for $__rate_interval.
SCRAPE_SECONDS = 15


def rate_interval(interval_s: int, scrape_s: int = SCRAPE_SECONDS) -> str:
    """Grafana's ``$__rate_interval``: max(interval + scrape interval, 4 scrape intervals)."""
    return f"{max(interval_s + scrape_s, 4 * scrape_s)}s"
