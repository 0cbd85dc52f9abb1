"""Declarative field specs: the one definition behind validation and JSON Schema.

Each wire schema is a tuple of :class:`Field`. ``schemas.validate`` checks
events against them and ``schemas.jsonschema`` renders them as JSON Schema, so
the two cannot drift apart (a unit test compares the rendered files with
``schemas/json/``).
"""

from __future__ import annotations

import dataclasses
import math
from math import isfinite
from typing import Callable

from fleetpulse.errors import ValidationError

#: Timestamps are epoch seconds; this range rejects milliseconds sent by mistake
#: (1.7e12) and zero/garbage, while allowing any plausible real clock.
MIN_TIMESTAMP = 946684800.0  # 2000-01-01T00:00:00Z
MAX_TIMESTAMP = 4102444800.0  # 2100-01-01T00:00:00Z
#: The value that stands for every value past a cap: label values past
#: FLEETPULSE_METRIC_LABEL_CAP on /metrics, categories past the drift bins'.
OTHER = "__other__"


@dataclasses.dataclass(frozen=True)
class Field:
    """One wire field. ``kind`` is one of number, integer, string, string_list, string_map."""

    name: str
    kind: str
    required: bool = True
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    enum: tuple[str, ...] | None = None
    description: str = ""

    def fast_check(self) -> Callable[[object], bool]:
        """A predicate that says yes to every ordinary valid non-null value,
        cheaply. It may say no to a valid one (an integral float, say): then
        :meth:`check` decides and explains. Validation runs per event, so this
        is the hot path of the worker."""
        lo = -math.inf if self.minimum is None else self.minimum
        hi = math.inf if self.maximum is None else self.maximum
        if self.kind == "number":
            return lambda v: (type(v) is float or type(v) is int) and lo <= v <= hi and isfinite(v)
        if self.kind == "integer":
            return lambda v: type(v) is int and lo <= v <= hi
        if self.kind == "string":
            longest, allowed = self.max_length or math.inf, self.enum
            if allowed is not None:
                return lambda v: v in allowed and type(v) is str
            return lambda v: type(v) is str and 0 < len(v) <= longest
        return lambda v: False  # lists and maps: rare, always the full check

    def check(self, value: object) -> object:
        """Return the value to store if ``value`` is valid for this field, else
        raise ValidationError. That is ``value`` itself, except an integral
        float in an integer field: accepted (see ``_integer``) and stored as
        the int, because an integer column refuses ``5.0`` (docs/schemas.md)."""
        if value is None:
            if self.nullable:
                return None
            raise ValidationError(self.name, "must not be null")
        checker = _CHECKERS[self.kind]
        checker(self, value)
        return int(value) if self.kind == "integer" else value


def _number(f: Field, v: object) -> None:
    # bool is an int subclass in Python; true/false is never a latency.
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValidationError(f.name, f"expected a number, got {type(v).__name__}")
    if not math.isfinite(v):
        raise ValidationError(f.name, f"must be finite, got {v}")
    _range(f, v)


def _integer(f: Field, v: object) -> None:
    # JSON Schema counts 5.0 as an integer; so do we, or a producer that checks
    # against schemas/json/ could still be dead-lettered.
    integral_float = isinstance(v, float) and v.is_integer()
    if isinstance(v, bool) or not (isinstance(v, int) or integral_float):
        raise ValidationError(f.name, f"expected an integer, got {type(v).__name__}")
    _range(f, v)


def _range(f: Field, v: float) -> None:
    if f.minimum is not None and v < f.minimum:
        raise ValidationError(f.name, f"must be >= {_plain(f.minimum)}, got {v}")
    if f.maximum is not None and v > f.maximum:
        raise ValidationError(f.name, f"must be <= {_plain(f.maximum)}, got {v}")


def _plain(x: float) -> str:
    """4102444800, not 4.10244e+09: a limit people can read and compare."""
    return str(int(x)) if float(x).is_integer() else repr(x)


def _string(f: Field, v: object) -> None:
    if not isinstance(v, str):
        raise ValidationError(f.name, f"expected a string, got {type(v).__name__}")
    if not v:
        raise ValidationError(f.name, "must not be empty")
    if f.max_length is not None and len(v) > f.max_length:
        raise ValidationError(f.name, f"longer than {f.max_length} characters")
    if f.enum is not None and v not in f.enum:
        raise ValidationError(f.name, f"must be one of {', '.join(f.enum)}, got {v!r}")


def _string_list(f: Field, v: object) -> None:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ValidationError(f.name, "expected a list of strings")


def _string_map(f: Field, v: object) -> None:
    if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
        raise ValidationError(f.name, "expected an object of string values")


_CHECKERS = {
    "number": _number,
    "integer": _integer,
    "string": _string,
    "string_list": _string_list,
    "string_map": _string_map,
}
