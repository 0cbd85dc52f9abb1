"""The plugin's macros, expanded as grafana/clickhouse-datasource 4.20.0 does
(its pkg/macros/macros_test.go expectations), and as bound parameters."""

import pytest

from fleetpulse.streams.panels.macros import (MacroError, TimeRange, as_bound, as_grafana, choose_interval,
                                              parameters, rate_interval, variables)

SPAN = TimeRange(1415792726, 1447328726, 20)


@pytest.mark.parametrize("sql, expected", [
    ("$__timeFilter(col)", "col >= toDateTime(1415792726) AND col <= toDateTime(1447328726)"),
    ("$__timeInterval(col)", "toStartOfInterval(toDateTime(col), INTERVAL 20 second)"),
    ("$__interval_s", "20"),
    ("$__fromTime", "toDateTime(1415792726)"),
    ("$__toTime", "toDateTime(1447328726)"),
    ("SELECT $__timeInterval(t) AS time WHERE $__timeFilter( t ) AND x > $__interval_s",
     "SELECT toStartOfInterval(toDateTime(t), INTERVAL 20 second) AS time WHERE t >= toDateTime(1415792726) AND "
     "t <= toDateTime(1447328726) AND x > 20"),
])
def test_macros_expand_as_the_plugin_does(sql, expected):
    assert as_grafana(sql, SPAN, {}) == expected


def test_variables_are_quoted_as_grafanas_singlequote_format():
    sql = "model IN (${model:singlequote}) AND node IN (${node:singlequote})"
    assert variables(sql) == ["model", "node"]
    assert as_grafana(sql, SPAN, {"model": ["a", "it's"], "node": ["n1"]}) == \
        "model IN ('a','it\\'s') AND node IN ('n1')"
    with pytest.raises(MacroError, match="no value for"):
        as_grafana(sql, SPAN, {"model": ["a"]})


def test_bound_form_puts_parameters_where_grafana_puts_literals():
    sql = "SELECT $__timeInterval(w) AS time FROM t WHERE $__timeFilter(w) AND m IN (${model:singlequote}) " \
          "AND $__interval_s > 0 AND w < $__toTime AND w > $__fromTime"
    assert as_bound(sql) == (
        "SELECT toStartOfInterval(toDateTime(w), INTERVAL {__interval_s:UInt32} second) AS time FROM t WHERE "
        "w >= toDateTime({__from:Int64}) AND w <= toDateTime({__to:Int64}) AND m IN ({model:Array(String)}) "
        "AND {__interval_s:UInt32} > 0 AND w < toDateTime({__to:Int64}) AND w > toDateTime({__from:Int64})")
    assert parameters(SPAN, {"model": ["x"]}) == {"__from": 1415792726, "__to": 1447328726, "__interval_s": 20,
                                                  "model": ["x"]}


@pytest.mark.parametrize("sql", ["$__timeFilter_ms(t)", "$__timeGroup(t, '5m')", "$__timeFilter(t, u)",
                                 "$__timeFilter(1; DROP)", "$__timeInterval", "$model", "${model}",
                                 "${model:csv}"])
def test_anything_else_is_refused_by_name(sql):
    with pytest.raises(MacroError):
        as_bound(sql)


@pytest.mark.parametrize("seconds, expected", [(600, 10), (3600, 20), (6 * 3600, 120), (86400, 300),
                                               (7 * 86400, 3600), (30 * 86400, 10800), (400 * 86400, 604800)])
def test_intervals_keep_points_under_the_limit_and_fit_the_windows(seconds, expected):
    interval = choose_interval(0, seconds, 10, 300)
    assert interval == expected
    assert seconds / interval <= 300 and interval % 10 == 0


def test_interval_for_a_window_size_that_is_no_nice_interval():
    assert choose_interval(0, 600, 45, 300) == 45
    assert choose_interval(0, 86400, 45, 300) == 315  # 45 s windows: the smallest multiple of 45 that will do
    assert choose_interval(0, 86400, 5, 300) == 300  # 5 divides the nice intervals


def test_rate_interval_is_grafanas():
    assert rate_interval(10) == "60s"  # four scrapes of 15 s
    assert rate_interval(300) == "315s"  # the interval plus one scrape
