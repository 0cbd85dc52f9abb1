"""Mergeable log-bucket latency sketches (DDSketch, gamma = 2^(1/32)).

A value x > 0 goes to bucket ``ceil(log2(x) * 32)``; bucket i holds
(2^((i-1)/32), 2^(i/32)]. These are the edges of Prometheus native histograms
at schema 5, so a sketch can be re-exported without re-bucketing. Sketches are
plain ``{bucket: count}`` maps and merge by adding counts, which ClickHouse
does with ``sumMap`` across workers, partitions, windows and late data.

Reading a quantile returns ``2 * gamma^i / (gamma + 1)`` for the bucket that
holds the rank, so the relative error is at most (gamma-1)/(gamma+1) ~ 1.08%.
Zero goes to its own bucket, ``ZERO_BUCKET``, and reads back as exactly 0.
The SQL twin of :func:`quantile` is ``fleetpulse_bucket_quantile`` in sql/.
"""

from __future__ import annotations

import math

import numpy as np

BUCKETS_PER_OCTAVE = 32  # 2^schema, schema 5
GAMMA = 2.0 ** (1.0 / BUCKETS_PER_OCTAVE)
RELATIVE_ERROR = (GAMMA - 1.0) / (GAMMA + 1.0)
ZERO_BUCKET = -32768  # Int16 minimum; also catches subnormals too small to index
MAX_BUCKET = 32767


def bucket_indices(values: np.ndarray) -> np.ndarray:
    """Bucket index of each value (values must be >= 0 and finite; validation ensures it)."""
    with np.errstate(divide="ignore"):
        raw = np.ceil(np.log2(values) * BUCKETS_PER_OCTAVE)
    return np.clip(raw, ZERO_BUCKET, MAX_BUCKET).astype(np.int16)


def bucket_value(index: int) -> float:
    """The value a bucket reads back as: the point of least relative error."""
    if index == ZERO_BUCKET:
        return 0.0
    return 2.0 * GAMMA ** index / (GAMMA + 1.0)


def rank(q: float, n: int) -> int:
    """1-based rank of the q-quantile among n values: the smallest x with at least
    ceil(q*n) values <= x. Rounding first keeps 0.99*100 at 99, not 100."""
    return max(1, math.ceil(round(q * n, 6)))


def quantile(buckets: dict[int, int], q: float) -> float:
    """q-quantile of a sketch; NaN when it is empty."""
    n = sum(buckets.values())
    if n == 0:
        return math.nan
    target = rank(q, n)
    seen = 0
    for index in sorted(buckets):
        seen += buckets[index]
        if seen >= target:
            return bucket_value(index)
    raise AssertionError("unreachable: cumulative count reached n")


def exact_quantile(values: np.ndarray, q: float) -> float:
    """The exact q-quantile under the same rank rule, for checking sketches."""
    ordered = np.sort(values)
    return float(ordered[rank(q, len(ordered)) - 1])
