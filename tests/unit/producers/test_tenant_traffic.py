"""Simulated tenants: Zipf ranks known in advance, spikes where asked, exact truth."""

from __future__ import annotations

import collections

import pytest

from fleetpulse.errors import ConfigError
from fleetpulse.producers.simulator import SimulationConfig, generate
from fleetpulse.producers.tenant_traffic import TenantSpike, TenantTruth, tenant_name

START = 1_764_000_000.0


def _events(**kw) -> list[dict]:
    config = SimulationConfig(count=20_000, rate=1000.0, start=START, seed=3, **kw)
    return [e for chunk in generate(config) for e in chunk]


def test_the_heaviest_tenants_are_the_lowest_ranks_and_the_truth_is_exact() -> None:
    events = _events(tenants=10_000, tenant_zipf=1.2)
    counts = collections.Counter(e["fleetpulse.tenant"] for e in events)
    assert [t for t, _ in counts.most_common(5)] == [tenant_name(r) for r in range(5)]
    truth = TenantTruth(10)
    truth.add(events)
    assert {t: v[0] for t, v in truth.totals().items()} == dict(counts)
    assert sum(r["errors"] for r in truth.rows()) == sum(1 for e in events if e.get("error.type"))
    assert truth.top(3) == counts.most_common(3)


def test_tenants_leave_the_rest_of_the_traffic_as_it_was() -> None:
    plain, tenanted = _events(), _events(tenants=100)
    assert [{k: v for k, v in e.items() if k != "fleetpulse.tenant"} for e in tenanted] == plain


def test_a_spike_sends_a_share_of_one_window_to_one_tenant() -> None:
    events = _events(tenants=1000, tenant_spikes=(TenantSpike.parse("tenant-000500@10x0.6"),))
    truth = TenantTruth(10)
    truth.add(events)
    spiked = [r for r in truth.rows() if r["tenant"] == "tenant-000500"]
    peak = max(spiked, key=lambda r: r["requests"])
    assert peak["window_start"] == START + 10  # seconds 10-20 of the run: one window
    assert 5500 < peak["requests"] < 6500  # 60% of its 10,000 requests
    assert sum(r["requests"] for r in spiked) - peak["requests"] < 100  # a light tenant otherwise


@pytest.mark.parametrize("text", ["nope", "t@x", "@5", "t@5x2"])
def test_bad_spikes_are_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        TenantSpike.parse(text)
