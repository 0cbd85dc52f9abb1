"""The checks on the fields of JSON requests to the worker (fleetpulse/params.py)."""

import math

import pytest

from fleetpulse.errors import RequestError
from fleetpulse import params as check


@pytest.mark.parametrize("body, why", [
    ({"seconds": "60"}, "seconds: expected a number, got str"),
    ({"seconds": True}, "seconds: expected a number, got bool"),
    ({"seconds": math.nan}, "seconds: must be between"),
    ({"seconds": 1e308}, "seconds: must be between"),
    ({"seconds": 0}, "seconds: must be between"),
    ({}, "seconds: required"),
])
def test_numbers_must_be_finite_and_in_range(body, why):
    with pytest.raises(RequestError, match=why):
        check.number(body, "seconds", 1, 3600)


@pytest.mark.parametrize("value, why", [
    (None, "non-empty object"), ({}, "non-empty object"), (["a"], "non-empty object"),
    ({"bad label": "x"}, "is not a label name"), ({"severity": 1}, "expected a string"),
    ({f"l{i}": "x" for i in range(21)}, "at most 20 labels"),
])
def test_labels_are_an_object_of_strings(value, why):
    with pytest.raises(RequestError, match=why):
        check.labels({"matchers": value}, "matchers")


def test_text_and_lists():
    assert check.text({"c": "why"}, "c") == "why"
    assert check.text({}, "c", "") == ""
    with pytest.raises(RequestError, match="at most 1000 characters"):
        check.text({"c": "x" * 1001}, "c")
    with pytest.raises(RequestError, match="expected a string, got list"):
        check.text({"c": []}, "c")
    assert check.text_list({}, "features", ["a"]) is None
    with pytest.raises(RequestError, match=r"unknown \['b'\]"):
        check.text_list({"features": ["a", "b"]}, "features", ["a"])
    with pytest.raises(RequestError, match="the body must be a JSON object, not list"):
        check.body_object([1])
