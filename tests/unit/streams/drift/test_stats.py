"""Drift statistics against oracles (numpy for PSI, scipy for KS and JS) on the
raw samples binned by the same edges (KS: on their bin indices), and the
false-alarm rate of the decision."""

from collections import Counter

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2, ks_2samp

from fleetpulse.streams.drift.stats import (OTHER, Significance, bin_categorical, bin_numeric, categories,
                                            chi2_quantile, evaluate, js, ks, numeric_edges, psi)
from fleetpulse.streams.windows.sketch import bucket_indices


def oracle_psi(ref_counts, cur_counts):
    p = (ref_counts + 0.5) / (ref_counts.sum() + 0.5 * len(ref_counts))
    q = (cur_counts + 0.5) / (cur_counts.sum() + 0.5 * len(cur_counts))
    return np.sum((q - p) * np.log(q / p))


@pytest.mark.parametrize("seed, shift", [(1, 0.0), (2, 0.3), (3, 1.0)])
def test_numeric_statistics_equal_the_oracles_on_raw_samples(seed, shift):
    rng = np.random.default_rng(seed)
    ref_raw = np.rint(rng.lognormal(6, 0.9, 20_000))
    cur_raw = np.rint(rng.lognormal(6 + shift * 0.9, 0.9, 3_000))
    ref_h = Counter(bucket_indices(ref_raw).tolist())
    cur_h = Counter(bucket_indices(cur_raw).tolist())
    edges = numeric_edges(ref_h, 10)
    ref_bins, cur_bins = bin_numeric(ref_h, edges), bin_numeric(cur_h, edges)
    # The oracle bins the raw samples by the same edges, as values: bucket edge i is 2^(i/32).
    value_edges = np.array([2.0 ** (e / 32) for e in edges])
    ref_o = np.bincount(np.searchsorted(value_edges, ref_raw, side="left"), minlength=len(edges) + 1)
    cur_o = np.bincount(np.searchsorted(value_edges, cur_raw, side="left"), minlength=len(edges) + 1)
    assert ref_bins.tolist() == ref_o.tolist() and cur_bins.tolist() == cur_o.tolist()
    assert psi(ref_bins, cur_bins) == pytest.approx(oracle_psi(ref_o, cur_o), abs=1e-9)
    ks_oracle = ks_2samp(np.searchsorted(value_edges, ref_raw), np.searchsorted(value_edges, cur_raw)).statistic
    assert ks(ref_bins, cur_bins) == pytest.approx(ks_oracle, abs=1e-9)
    assert js(ref_bins, cur_bins) == pytest.approx(jensenshannon(ref_o, cur_o, base=2), abs=1e-9)


def test_edges_are_reference_deciles_without_duplicates():
    discrete = Counter({0: 900, 32: 50, 51: 50})  # tokens 1, 2, 3: nine deciles all at 1
    edges = numeric_edges(discrete, 10)
    assert edges == [0]
    assert bin_numeric(discrete, edges).tolist() == [900, 100]
    assert bin_numeric({-500: 3, 900: 4}, edges).tolist() == [3, 4]  # open-ended outer bins
    spread = Counter({i: 10 for i in range(100)})
    assert numeric_edges(spread, 10) == [9, 19, 29, 39, 49, 59, 69, 79, 89]


def test_categorical_bins_fold_the_tail_into_other():
    ref = {"stop": 900, "length": 80, "content_filter": 15, "tool_calls": 5}
    cats = categories(ref, cap=3)
    assert cats == ["stop", "length", OTHER]
    assert bin_categorical({"stop": 5, "tool_calls": 2, "new_reason": 1}, cats).tolist() == [5, 0, 3]
    ref_b = bin_categorical(ref, cats)
    cur_b = bin_categorical({"stop": 700, "length": 250, "content_filter": 50}, cats)
    assert js(ref_b, cur_b) == pytest.approx(jensenshannon(ref_b, cur_b, base=2), abs=1e-9)


@pytest.mark.parametrize("df", [1, 2, 5, 9, 19])
def test_chi2_quantile_is_close_to_scipy(df):
    for p in (0.999, 0.9999):
        assert chi2_quantile(p, df) == pytest.approx(chi2.ppf(p, df), rel=0.05)


def test_no_drift_false_alarm_rate_is_at_most_a_tenth_of_a_percent():
    rng = np.random.default_rng(7)
    p = np.array([0.3, 0.2, 0.15, 0.1, 0.08, 0.07, 0.05, 0.03, 0.015, 0.005])
    rule = Significance()
    alarms = 0
    trials = 20_000
    for _ in range(trials):
        n_ref, n_cur = rng.integers(200, 20_000, 2)
        verdict = evaluate(rng.multinomial(n_ref, p).astype(float), rng.multinomial(n_cur, p).astype(float),
                           rule, ordered=True)
        alarms += verdict.drifted
    assert alarms / trials <= 0.001, alarms


def test_small_samples_are_insufficient_and_large_shifts_are_graded():
    rule = Significance(min_count=200)
    assert evaluate(np.full(10, 10.0), np.full(10, 15.0), rule, True).decision == "insufficient"
    ref = np.full(10, 1000.0)
    shifted = np.array([3000, 2000, 1500, 1000, 800, 600, 400, 300, 250, 150], dtype=float)
    verdict = evaluate(ref, shifted, rule, True)
    assert verdict.drifted and verdict.decision == "critical" and verdict.psi >= 0.25
    assert evaluate(ref, ref.copy(), rule, True).decision == "stable"


@pytest.mark.parametrize("constant, after", [(0.0, 0.05), (512.0, 2048.0)])
def test_a_point_mass_reference_still_gives_bins_and_a_decision(constant, after):
    # A queue time that is always 0, or a constant 512-token prompt: the whole
    # reference is one log bucket, and no decile falls below it.
    ref_h = Counter(bucket_indices(np.full(5_000, constant)).tolist())
    edges = numeric_edges(ref_h, 10)
    assert len(edges) >= 1 and len(bin_numeric(ref_h, edges)) >= 2
    (only,) = ref_h
    assert edges == [only - 1, only]  # the value's bucket is a bin of its own, bracketed
    rule = Significance(min_count=200)
    ref = bin_numeric(ref_h, edges)
    unchanged = bin_numeric(Counter(bucket_indices(np.full(400, constant)).tolist()), edges)
    assert evaluate(ref, unchanged, rule, True).decision == "stable"
    # A quarter of the requests now take the new value: judged at once, not insufficient.
    mixed = np.concatenate([np.full(300, constant), np.full(100, after)])
    shifted = bin_numeric(Counter(bucket_indices(mixed).tolist()), edges)
    verdict = evaluate(ref, shifted, rule, True)
    assert verdict.drifted, verdict
    assert verdict.ks == pytest.approx(0.25)
    # Below the value, the same: a bin holds everything under it.
    if constant > 0:
        lower = bin_numeric(Counter(bucket_indices(np.full(400, constant / 4)).tolist()), edges)
        assert evaluate(ref, lower, rule, True).decision == "critical"


def test_a_reference_almost_all_in_its_top_bucket_is_bracketed_too():
    ref_h = Counter({3: 1, 5: 1000})  # every decile at bucket 5
    assert numeric_edges(ref_h, 10) == [4, 5]
    assert bin_numeric(ref_h, [4, 5]).tolist() == [1, 1000, 0]
