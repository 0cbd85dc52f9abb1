"""The simulator's quality signals: valid, on successful requests only, at the
shares asked for, without changing the rest of the traffic, with exact truth."""

from __future__ import annotations

import pytest

from fleetpulse.cli import build_parser
from fleetpulse.errors import ConfigError
from fleetpulse.producers.sim_quality import QualityShares
from fleetpulse.producers.simulator import SimulationConfig, Truth, generate
from fleetpulse.schemas import validate_event

START = 1_700_000_000.0
SIGNALS = ("fleetpulse.output.refusal", "fleetpulse.output.empty", "fleetpulse.output.repetition",
           "fleetpulse.output.format_ok", "gen_ai.usage.cache_read.input_tokens")


def events_of(config):
    return [e for chunk in generate(config) for e in chunk]


def plain(e: dict) -> dict:
    return {k: v for k, v in e.items() if k not in SIGNALS}


def test_shares_signals_and_an_unchanged_rest():
    base = SimulationConfig(count=20_000, start=START, seed=5)
    shares = QualityShares(refusal=0.1, truncation=0.0, repetition=0.3)
    before, after = events_of(base), events_of(SimulationConfig(count=20_000, start=START, seed=5, quality=shares))
    assert [plain(e) for e in after] == before  # no truncation asked: every other field as before
    ok = [e for e in after if "error.type" not in e]
    assert all("fleetpulse.output.refusal" in e for e in ok)
    assert not any("fleetpulse.output.refusal" in e for e in after if "error.type" in e)
    for e in after:
        validate_event(e, "request")
    refused = sum(e["fleetpulse.output.refusal"] for e in ok) / len(ok)
    assert 0.09 < refused < 0.11
    repetitive = sum(e["fleetpulse.output.repetition"] >= 0.2 for e in ok) / len(ok)
    assert 0.28 < repetitive < 0.32
    truncated = events_of(SimulationConfig(count=20_000, start=START, seed=5, quality=QualityShares(truncation=0.5)))
    length = sum((e.get("gen_ai.response.finish_reasons") or [""])[0] == "length" for e in truncated)
    assert length > 0.45 * len(ok)


def test_the_truth_counts_what_was_generated():
    events = events_of(SimulationConfig(count=5000, start=START, seed=1, quality=QualityShares(0.2, 0.2, 0.2)))
    truth = Truth(10)
    truth.add(events)
    total = {name: sum(truth.quality.row(k)[name] for k in truth._rows) for name in truth.quality.COUNTS}
    assert total["analysed"] == sum("fleetpulse.output.refusal" in e for e in events)
    assert total["refusals"] == sum(e.get("fleetpulse.output.refusal") == 1 for e in events)
    assert total["format_failures"] == sum(e.get("fleetpulse.output.format_ok") == 0 for e in events)
    assert total["cache_read_tokens"] == sum(e.get("gen_ai.usage.cache_read.input_tokens", 0) for e in events)
    assert truth.quality.repetition_quantile(list(truth._rows), 1.0) == max(
        e["fleetpulse.output.repetition"] for e in events if "fleetpulse.output.repetition" in e)


def test_shares_are_probabilities_and_the_cli_switches_set_them():
    with pytest.raises(ConfigError, match="in \\[0, 1\\]"):
        QualityShares(refusal=1.5)
    args = build_parser().parse_args(["simulate", "--count", "10", "--refusal-share", "0.1",
                                      "--repetition-share", "0.2"])
    assert (args.refusal_share, args.truncation_share, args.repetition_share, args.quality) == (0.1, None, 0.2, False)
