"""Space-Saving against exact counts: the bounds of the module docstring hold
after batch updates and after merges, in any order."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from fleetpulse.streams.windows.spacesaving import Summary, merge, merge_all


def _zipf_batches(rng: np.random.Generator, tenants: int, batches: int, size: int) -> list[list[str]]:
    return [[f"t{i}" for i in (rng.zipf(1.3, size) % tenants).tolist()] for _ in range(batches)]


def _check(summary: Summary, truth: collections.Counter) -> None:
    assert summary.total == sum(truth.values())
    assert summary.floor <= summary.total / summary.capacity
    assert int(summary.counts.sum()) <= summary.total
    kept = set(summary.keys.tolist())
    for key, estimate, error in zip(summary.keys.tolist(), summary.counts.tolist(), summary.errors.tolist()):
        assert truth[key] <= estimate <= truth[key] + error
        assert error <= summary.floor
    for key, count in truth.items():
        if key not in kept:
            assert count <= summary.floor
        if count > summary.total / summary.capacity:
            assert key in kept


def _add(summary: Summary, batch: list[str]) -> Summary:
    keys, counts = np.unique(np.array(batch, dtype=object).astype(str), return_counts=True)
    return summary.add(keys.astype(object), counts)


@pytest.mark.parametrize("capacity", [1, 5, 50])
def test_batch_updates_keep_the_bounds(capacity: int) -> None:
    rng = np.random.default_rng(capacity)
    summary, truth = Summary.empty(capacity), collections.Counter()
    for batch in _zipf_batches(rng, 5000, 30, 2000):
        summary = _add(summary, batch)
        truth.update(batch)
        _check(summary, truth)


def test_one_event_batches_are_classic_space_saving() -> None:
    stream = list("abacabadabacabae" * 3) + list("xyz")
    summary, truth = Summary.empty(3), collections.Counter()
    for item in stream:
        summary = summary.add([item], [1])
        truth[item] += 1
        _check(summary, truth)
    assert int(summary.counts.sum()) == len(stream)  # one at a time, the mass is kept exactly
    assert summary.top(1)[0][0] == "a"


def test_a_summary_that_never_filled_is_exact() -> None:
    summary = Summary.empty(10).add(["a", "b"], [3, 1]).add(["b", "c"], [2, 5])
    assert summary.top(3) == [("c", 5, 0), ("a", 3, 0), ("b", 3, 0)]
    assert summary.floor == 0 and summary.estimate("zzz") == 0


def test_merging_worker_summaries_keeps_the_bounds_in_any_order() -> None:
    rng = np.random.default_rng(7)
    workers = []
    truth = collections.Counter()
    for w in range(4):
        summary = Summary.empty(20)
        for batch in _zipf_batches(rng, 3000 + 500 * w, 10, 1000):
            summary = _add(summary, batch)
            truth.update(batch)
        workers.append(summary)
    one = merge_all(workers, 20)
    _check(one, truth)
    other = merge(merge(workers[3], workers[1]), merge(workers[2], workers[0]))
    _check(other, truth)
    # Merging is not associative near the floor, but the heavy tenants agree.
    assert [k for k, _, _ in one.top(5)] == [k for k, _, _ in other.top(5)]
    assert merge(workers[0], workers[1]).top(20) == merge(workers[1], workers[0]).top(20)  # commutative


def test_known_heavy_hitters_are_the_top_k_exactly() -> None:
    rng = np.random.default_rng(1)
    heavy = {f"h{i}": 2000 - 50 * i for i in range(10)}
    summary, truth = Summary.empty(40), collections.Counter()
    light = [f"l{i}" for i in rng.integers(0, 100_000, 60_000).tolist()]
    events = light + [k for k, n in heavy.items() for _ in range(n)]
    rng.shuffle(events)
    for lo in range(0, len(events), 7000):
        summary = _add(summary, events[lo:lo + 7000])
        truth.update(events[lo:lo + 7000])
    _check(summary, truth)
    assert [k for k, _, _ in summary.top(10)] == list(heavy)


def test_exact_keeps_only_the_capacity_largest() -> None:
    summary = Summary.exact(2, ["a", "b", "c", "d"], [1, 9, 4, 4])
    assert summary.top(2) == [("b", 9, 0), ("c", 4, 0)]
    assert summary.floor == 4 and summary.total == 18
    with pytest.raises(ValueError):
        Summary.empty(0)
