"""A page's query string, checked before anything runs (streams/panels/serve.py)."""

import datetime as dt

import pytest

from fleetpulse.errors import RequestError
from fleetpulse.streams.panels.serve import DEFAULT_RANGE_S, MAX_VALUES, _answer, _legend, parse_request
from fleetpulse.streams.panels.dashboards import PANELS

NOW = 1_800_000_000.0


def test_defaults_are_the_last_fifteen_minutes_with_every_value():
    request = parse_request({}, 10, NOW)
    assert (request.span.start, request.span.end) == (NOW - DEFAULT_RANGE_S, NOW)
    assert request.span.interval_s == 10 and request.filters == {}


def test_filters_keep_their_order_once_each():
    request = parse_request({"from": ["1799990000"], "to": ["1800000000.7"], "model": ["b", "a", "b"]}, 10, NOW)
    assert request.filters == {"model": ["b", "a"]}
    assert (request.span.start, request.span.end) == (1799990000, 1800000000)
    assert request.span.interval_s == 60  # 10,000 s at most 300 points


@pytest.mark.parametrize("query, message", [
    ({"sql": ["SELECT 1"]}, "unknown parameter 'sql'"),
    ({"from": ["yesterday"]}, "not a time in unix seconds"),
    ({"from": ["nan"]}, "not a time in unix seconds"),
    ({"from": ["-5"]}, "not a time in unix seconds"),
    ({"from": ["1", "2"]}, "given 2 times"),
    ({"from": ["1800000000"], "to": ["1799999999"]}, "must be before"),
    ({"from": ["0"], "to": ["1800000000"]}, "at most 400"),
    ({"to": [str(NOW + 2 * 86400)]}, "in the future"),
    ({"model": ["m"] * (MAX_VALUES + 1)}, "at most"),
    ({"node": ["x" * 1000]}, "at most"),
])
def test_bad_requests_get_one_line_naming_the_problem(query, message):
    with pytest.raises(RequestError, match=message):
        parse_request(query, 10, NOW)


def test_prometheus_legends_fill_labels_like_grafana():
    assert _legend("{{topic}} / {{ field }}", {"topic": "t", "field": "f"}) == "t / f"
    assert _legend("", {"b": "2", "a": "1"}) == "a=1,b=2"
    assert _legend("{{missing}}", {}) == ""


def test_answers_carry_time_as_seconds_other_date_times_as_text_and_maps_as_text():
    when = dt.datetime(2026, 12, 1, 5, 0, tzinfo=dt.timezone.utc)
    request = parse_request({}, 10, NOW)
    answer = _answer(PANELS["alerts_history"], request.span, ["time", "starts_at", "labels", "value"],
                     [[when, when, {"model": "m"}, 1.5]])
    assert answer["rows"] == [[when.timestamp(), "2026-12-01T05:00:00Z", '{"model":"m"}', 1.5]]
    assert answer["interval_s"] == 10 and answer["kind"] == "table"
