"""Per-tenant partial rows equal the exact counts, however many tenants; a
replay skips what tenant_windows already holds, whatever the batch's cut."""

from __future__ import annotations

import collections

import numpy as np
import orjson

from fleetpulse.schemas import encode_batch
from fleetpulse.streams.windows.batch import RawMessage, process_batch
from fleetpulse.streams.windows.tenants import TENANT_COLUMNS, aggregate_tenants, tenant_block
from tests.clock import RECENT_HOUR
from tests.events import good_request, request_columns


def _events(n: int, tenants: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    who = rng.integers(0, tenants, n).tolist()
    models = rng.integers(0, 2, n).tolist()
    fails = (rng.random(n) < 0.1).tolist()
    return [{"fleetpulse.tenant": f"t{w}" if w else None, "gen_ai.request.model": f"m{m}",
             "timestamp": RECENT_HOUR + i * 30.0 / n, "gen_ai.usage.input_tokens": i % 7,
             "gen_ai.usage.output_tokens": i % 5, "error.type": "E" if f else None}
            for i, (w, m, f) in enumerate(zip(who, models, fails))]


def _truth(events: list[dict]) -> dict:
    truth = collections.defaultdict(lambda: [0, 0, 0, 0])
    for e in events:
        if e["fleetpulse.tenant"] is None:
            continue
        key = (int((e["timestamp"]) // 10 * 10), e["fleetpulse.tenant"], e["gen_ai.request.model"])
        row = truth[key]
        row[0] += 1
        row[1] += e["error.type"] is not None
        row[2] += e["gen_ai.usage.input_tokens"]
        row[3] += e["gen_ai.usage.output_tokens"]
    return {k: tuple(v) for k, v in truth.items()}


def test_rows_equal_the_exact_per_tenant_totals() -> None:
    events = _events(5000, 800)
    block = aggregate_tenants(request_columns(events), 10)
    got = {(w, t, m): (r, e, i, o) for w, t, m, r, e, i, o in block.rows()}
    assert got == _truth(events)  # events without a tenant are not tenant rows
    starts, codes, counts = block.window_counts()
    per_window = collections.Counter()
    for (w, t, _), v in got.items():
        per_window[(w, t)] += v[0]
    assert dict(zip(zip(starts.tolist(), [block.tenant.values[c] for c in codes.tolist()]), counts.tolist())) \
        == dict(per_window)


def test_native_block_names_every_column() -> None:
    block = aggregate_tenants(request_columns(_events(50, 5)), 10)
    from fleetpulse.streams.windows.rows import SourceSpan
    data = tenant_block(block, 10, [SourceSpan("t", 0, 0, 9, RECENT_HOUR)])
    for name in TENANT_COLUMNS:
        assert name.encode() in data


def _messages(events: list[dict]) -> list[RawMessage]:
    return [RawMessage("t", 0, o, encode_batch([good_request(**e) for e in events[o * 10:(o + 1) * 10]]))
            for o in range((len(events) + 9) // 10)]


def test_a_replay_skips_messages_whose_tenant_rows_are_durable_whatever_the_cut() -> None:
    events = _events(300, 40, seed=3)
    msgs = _messages(events)
    run = lambda m, floor=None: process_batch(m, {}, window_seconds=10, lateness=30, max_bytes=1 << 20,  # noqa: E731
                                              keep_events=False, tenant_floor=floor)
    first = run(msgs[:12])  # tenant rows written, window rows not: then a crash
    replay = run(msgs, {("t", 0): 12})  # read again in one cut: messages 0-11 count for windows only
    assert replay.events == len(events)
    rows = collections.Counter()
    for block in (first.tenants, replay.tenants):
        for w, t, m, r, e, i, o in block.rows():
            rows[(w, t, m)] += r
    assert dict(rows) == {k: v[0] for k, v in _truth(events).items()}


def test_old_producers_without_tenants_make_no_rows() -> None:
    msgs = [RawMessage("t", 0, 0, orjson.dumps(good_request()))]
    result = process_batch(msgs, {}, window_seconds=10, lateness=30, max_bytes=1 << 20, keep_events=False)
    assert result.events == 1 and len(result.tenants) == 0
