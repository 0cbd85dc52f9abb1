"""Drift statistics on binned distributions (pure).

Reference bins are frozen from the reference itself: for a numeric feature the
edges are the reference's deciles, snapped to the log-bucket edges its
histogram is kept in (so re-binning any window is exact), with open-ended outer
bins and duplicate edges removed; for a categorical feature they are its most
frequent values, the rest folded into ``__other__``.

- PSI: sum (q - p) ln(q / p) over bins, with 0.5 added to every bin's count
  (empty bins would make it infinite);
- KS: the largest gap between the two binned CDFs (numeric features only: a
  categorical feature has no order);
- JS: the Jensen-Shannon distance, base 2, of the binned proportions.

The decision accounts for sample size. With no drift, n_eff * PSI is close to
chi-square with (bins - 1) degrees of freedom, where 1/n_eff = 1/n_ref + 1/n_cur
(PSI ~ Pearson's chi-square distance for small differences). So a window is
called drifted only when PSI is above that distribution's (1 - alpha) quantile
and both sides have at least ``min_count`` samples; the PSI labels 0.1 and 0.25
then grade how large the shift is.
"""

from __future__ import annotations

import dataclasses
import math
from statistics import NormalDist

import numpy as np

from fleetpulse.schemas.fields import OTHER

SMOOTHING = 0.5


def numeric_edges(reference: dict[int, int], bins: int) -> list[int]:
    """Bucket indexes that end each bin but the last (bin k holds buckets in
    (edge[k-1], edge[k]]; the first and last bins are open-ended).

    When (nearly) all of the reference sits in its top bucket, no decile falls
    below it and there would be a single bin, which can never show a change.
    Then the edges bracket that bucket: below it, it, above it. A queue time
    that is always 0 and starts queueing, or a constant prompt length that
    jumps, is judged as soon as both sides have enough samples."""
    keys = sorted(reference)
    counts = np.array([reference[k] for k in keys], dtype=np.float64)
    if counts.sum() == 0:
        return []
    cdf = np.cumsum(counts) / counts.sum()
    edges = []
    for q in np.arange(1, bins) / bins:
        edge = keys[int(np.searchsorted(cdf, q - 1e-12))]
        if edge != keys[-1] and (not edges or edge > edges[-1]):
            edges.append(edge)
    return edges or [keys[-1] - 1, keys[-1]]


def bin_numeric(histogram: dict[int, int], edges: list[int]) -> np.ndarray:
    out = np.zeros(len(edges) + 1)
    if histogram:
        keys = np.fromiter(histogram.keys(), dtype=np.int64, count=len(histogram))
        counts = np.fromiter(histogram.values(), dtype=np.float64, count=len(histogram))
        np.add.at(out, np.searchsorted(np.asarray(edges, dtype=np.int64), keys, side="left"), counts)
    return out


def categories(reference: dict[str, int], cap: int) -> list[str]:
    """The reference's most frequent values (ties by name), then ``__other__``."""
    ranked = sorted((v for v in reference if v != OTHER), key=lambda v: (-reference[v], v))
    return ranked[: max(cap - 1, 1)] + [OTHER]


def bin_categorical(histogram: dict[str, int], cats: list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(cats)}
    out = np.zeros(len(cats))
    for value, count in histogram.items():
        out[index.get(value, len(cats) - 1)] += count
    return out


def psi(ref: np.ndarray, cur: np.ndarray) -> float:
    p = (ref + SMOOTHING) / (ref.sum() + SMOOTHING * len(ref))
    q = (cur + SMOOTHING) / (cur.sum() + SMOOTHING * len(cur))
    return float(np.sum((q - p) * np.log(q / p)))


def ks(ref: np.ndarray, cur: np.ndarray) -> float:
    return float(np.max(np.abs(np.cumsum(ref) / ref.sum() - np.cumsum(cur) / cur.sum())))


def js(ref: np.ndarray, cur: np.ndarray) -> float:
    p, q = ref / ref.sum(), cur / cur.sum()
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return math.sqrt(max((kl(p) + kl(q)) / 2, 0.0))


def chi2_quantile(p: float, df: int) -> float:
    """The chi-square quantile without scipy at run time: exact for 1 and 2
    degrees of freedom, Wilson-Hilferty (within ~2% at these tails) above."""
    if df == 1:
        return NormalDist().inv_cdf((1 + p) / 2) ** 2
    if df == 2:
        return -2.0 * math.log(1 - p)
    z = NormalDist().inv_cdf(p)
    h = 2.0 / (9.0 * df)
    return df * (1.0 - h + z * math.sqrt(h)) ** 3


@dataclasses.dataclass(frozen=True)
class Significance:
    alpha: float = 1e-4
    min_count: int = 200


@dataclasses.dataclass(frozen=True)
class Verdict:
    psi: float
    ks: float
    js: float
    n_ref: int
    n_cur: int
    threshold: float
    decision: str  # insufficient | stable | drift | warning | critical

    @property
    def drifted(self) -> bool:
        return self.decision in ("drift", "warning", "critical")


def evaluate(ref: np.ndarray, cur: np.ndarray, rule: Significance, ordered: bool) -> Verdict:
    n_ref, n_cur = int(ref.sum()), int(cur.sum())
    if min(n_ref, n_cur) < rule.min_count or len(ref) < 2:
        nan = float("nan")
        return Verdict(nan, nan, nan, n_ref, n_cur, nan, "insufficient")
    value = psi(ref, cur)
    threshold = chi2_quantile(1 - rule.alpha, len(ref) - 1) * (1 / n_ref + 1 / n_cur)
    if value <= threshold:
        decision = "stable"
    else:
        decision = "critical" if value >= 0.25 else "warning" if value >= 0.1 else "drift"
    return Verdict(value, ks(ref, cur) if ordered else float("nan"), js(ref, cur), n_ref, n_cur, threshold, decision)
