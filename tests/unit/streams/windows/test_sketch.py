"""Log-bucket sketch: quantiles within the relative-error bound of exact ones."""

import math
from collections import Counter

import numpy as np
import pytest

from fleetpulse.streams.windows.sketch import (GAMMA, RELATIVE_ERROR, ZERO_BUCKET, bucket_indices, bucket_value,
                                               exact_quantile, quantile, rank)


def test_relative_error_bound_is_about_1_1_percent():
    assert 0.0108 < RELATIVE_ERROR < 0.0109


def test_bucket_edges_are_prometheus_schema_5():
    # Prometheus native histograms, schema 5: bucket i has upper bound 2^(i/32), inclusive.
    for i in (-100, -1, 0, 1, 31, 32, 33, 500):
        upper = 2.0 ** (i / 32)
        assert bucket_indices(np.array([upper * (1 - 1e-12)]))[0] == i
        assert bucket_indices(np.array([upper * (1 + 1e-12)]))[0] == i + 1


def test_zero_gets_its_own_bucket_and_reads_back_as_zero():
    assert bucket_indices(np.array([0.0]))[0] == ZERO_BUCKET
    assert bucket_value(ZERO_BUCKET) == 0.0


@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99, 0.999])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quantiles_within_bound_of_exact(q, seed):
    rng = np.random.default_rng(seed)
    values = rng.lognormal(mean=-1.0, sigma=1.2, size=50_000)
    buckets = Counter(bucket_indices(values).tolist())
    exact = exact_quantile(values, q)
    assert abs(quantile(buckets, q) - exact) / exact <= RELATIVE_ERROR + 1e-12


def test_every_value_reads_back_within_bound():
    values = np.geomspace(1e-6, 1e4, 10_000)
    read = np.array([bucket_value(i) for i in bucket_indices(values).tolist()])
    assert np.max(np.abs(read - values) / values) <= RELATIVE_ERROR + 1e-12


def test_rank_rule_is_robust_to_float_noise():
    assert rank(0.99, 100) == 99
    assert rank(0.5, 3) == 2
    assert rank(0.0, 10) == 1
    assert rank(1.0, 10) == 10


def test_empty_sketch_is_nan():
    assert math.isnan(quantile({}, 0.5))


def test_gamma():
    assert GAMMA == pytest.approx(2 ** (1 / 32))
