"""Checks for the fields of JSON requests to the worker (/silences, /drift/baseline).

Each returns the value in the type the code needs, or raises RequestError with
a one-line reason that names the field: the client gets a 400, never a
traceback, whatever it sends (wrong types, NaN, 1e308, huge strings).
"""

from __future__ import annotations

import math
import re

from fleetpulse.errors import RequestError

MAX_TEXT = 1000
_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")


def body_object(body: object) -> dict:
    if not isinstance(body, dict):
        raise RequestError(f"the body must be a JSON object, not {type(body).__name__}")
    return body


def text(body: dict, name: str, default: str | None = None, limit: int = MAX_TEXT) -> str:
    value = body.get(name, default)
    if value is None:
        raise RequestError(f"{name}: required")
    if not isinstance(value, str):
        raise RequestError(f"{name}: expected a string, got {type(value).__name__}")
    if len(value) > limit:
        raise RequestError(f"{name}: at most {limit} characters, got {len(value)}")
    return value


def number(body: dict, name: str, low: float, high: float) -> float:
    """A finite number within [low, high]."""
    value = body.get(name)
    if value is None:
        raise RequestError(f"{name}: required")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(f"{name}: expected a number, got {type(value).__name__}")
    if not math.isfinite(value) or not low <= value <= high:
        raise RequestError(f"{name}: must be between {low:g} and {high:g}, got {value!r}")
    return float(value)


def labels(body: dict, name: str, limit: int = 20) -> dict[str, str]:
    """A non-empty object of label names to string values."""
    value = body.get(name)
    if not isinstance(value, dict) or not value:
        raise RequestError(f"{name}: expected a non-empty object of label: value, e.g. {{\"alertname\": \"HighErrorRate\"}}")
    if len(value) > limit:
        raise RequestError(f"{name}: at most {limit} labels, got {len(value)}")
    for key, item in value.items():
        if not _LABEL.fullmatch(key):
            raise RequestError(f"{name}: {key[:100]!r} is not a label name (letters, digits, _)")
        if not isinstance(item, str) or len(item) > MAX_TEXT:
            raise RequestError(f"{name}.{key}: expected a string of at most {MAX_TEXT} characters")
    return dict(value)


def text_list(body: dict, name: str, allowed: list[str]) -> list[str] | None:
    """None when absent; else a list of distinct strings, each one of ``allowed``."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RequestError(f"{name}: expected a list of strings")
    if len(set(value)) != len(value):
        raise RequestError(f"{name}: each one at most once")
    unknown = [v[:100] for v in value if v not in allowed]
    if unknown:
        raise RequestError(f"{name}: unknown {unknown}; choose from {', '.join(allowed)}")
    return value
