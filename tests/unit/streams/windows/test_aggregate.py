"""Stage-1 aggregation equals a naive per-event recomputation."""

from collections import Counter, defaultdict

import numpy as np
import pytest

from fleetpulse.streams.windows.aggregate import aggregate
from fleetpulse.streams.windows.columns import to_columns
from fleetpulse.streams.windows.grid import window_starts
from tests.events import request_columns
from fleetpulse.streams.windows.sketch import bucket_indices


def _events(n, seed=7, nodes=4):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        err = rng.random() < 0.1
        out.append({
            "timestamp": 1764000000.0 + float(rng.uniform(0, 60)),
            "gen_ai.request.model": f"m{rng.integers(3)}", "host.name": f"n{rng.integers(nodes)}", "trace_id": f"t{i}",
            "gen_ai.server.request.duration": float(rng.lognormal(0, 1)),
            "gen_ai.server.time_to_first_token": None if err else float(rng.lognormal(-2, 1)),
            "gen_ai.server.time_per_output_token": float(rng.lognormal(-4, 0.5)),
            "gen_ai.usage.input_tokens": int(rng.integers(0, 4000)),
            "gen_ai.usage.output_tokens": int(rng.integers(0, 1000)),
            "error.type": str(rng.choice(["timeout", "oom"])) if err else None,
        })
    return out


def test_window_starts_are_event_time_floors():
    ts = np.array([1764000000.0, 1764000009.999, 1764000010.0, 1764000019.5])
    assert window_starts(ts, 10).tolist() == [1764000000, 1764000000, 1764000010, 1764000010]


@pytest.mark.parametrize("nodes", [4, 3000])  # a small (group, bucket) grid is counted by bincount, a large one not
def test_aggregate_matches_naive_recomputation(nodes):
    events = _events(5000, nodes=nodes)
    partials = aggregate(request_columns(events), 10).partials()
    assert {p.late for p in partials} == {False} and {p.source for p in partials} == {0}
    naive = defaultdict(lambda: {"requests": 0, "errors": 0, "in": 0, "out": 0, "lat": Counter(),
                                 "ttft": Counter(), "err_types": Counter(), "lat_sum": 0.0})
    for e in events:
        key = (int(e["timestamp"] // 10 * 10), e["gen_ai.request.model"], e["host.name"])
        g = naive[key]
        g["requests"] += 1
        g["errors"] += e["error.type"] is not None
        g["in"] += e["gen_ai.usage.input_tokens"]
        g["out"] += e["gen_ai.usage.output_tokens"]
        g["lat_sum"] += e["gen_ai.server.request.duration"]
        g["lat"][int(bucket_indices(np.array([e["gen_ai.server.request.duration"]]))[0])] += 1
        if e["gen_ai.server.time_to_first_token"] is not None:
            g["ttft"][int(bucket_indices(np.array([e["gen_ai.server.time_to_first_token"]]))[0])] += 1
        if e["error.type"]:
            g["err_types"][e["error.type"]] += 1
    assert len(partials) == len(naive)
    for p in partials:
        g = naive[(p.window_start, p.model, p.node)]
        assert (p.requests, p.errors, p.input_tokens, p.output_tokens) == (g["requests"], g["errors"], g["in"], g["out"])
        assert p.latency_buckets == dict(g["lat"])
        assert p.ttft_buckets == dict(g["ttft"])
        assert p.errors_by_type == dict(g["err_types"])
        assert abs(p.latency_sum - g["lat_sum"]) < 1e-9 * max(1.0, g["lat_sum"])
        assert sum(p.tpot_buckets.values()) == p.requests


def test_empty_batch_has_no_partials():
    assert aggregate(to_columns([]), 10).partials() == []


def test_group_codes_never_overflow_on_hostile_key_ranges():
    from fleetpulse.streams.windows.aggregate import group_codes

    rng = np.random.default_rng(3)
    n = 5000
    keys = [rng.integers(0, 2**40, n), rng.integers(-2**40, 2**40, n), rng.integers(0, 3, n)]
    keys[0][:2500] = keys[0][2500:]  # some repeated combinations
    keys[1][:2500] = keys[1][2500:]
    keys[2][:2500] = keys[2][2500:]
    group, first = group_codes(*keys)
    naive = {}
    for i, key in enumerate(zip(*(k.tolist() for k in keys))):
        naive.setdefault(key, []).append(i)
    assert len(first) == len(naive)
    for members in naive.values():
        assert len({group[i] for i in members}) == 1
    assert len(set(group.tolist())) == len(naive)


def test_coded_columns_relabel_and_merge():
    from fleetpulse.streams.windows.columns import Coded

    column = Coded.of(["a", None, "b", "a", None])
    assert [column.values[c] for c in column.codes] == ["a", None, "b", "a", None]
    merged = column.relabel(lambda v: v or "a")
    assert merged.values == ["a", "b"] and [merged.values[c] for c in merged.codes] == ["a", "a", "b", "a", "a"]
