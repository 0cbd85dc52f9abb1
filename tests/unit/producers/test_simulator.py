"""The simulator's events are valid, deterministic, realistic enough, and its truth is exact."""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import orjson
import pytest

from fleetpulse.errors import ConfigError
from fleetpulse.producers.simulator import SimulationConfig, Truth, generate, profiles
from fleetpulse.schemas import validate_event

START = 1_700_000_000.0


def events_of(config: SimulationConfig) -> list[dict]:
    return [event for chunk in generate(config) for event in chunk]


@pytest.fixture(scope="module")
def bursty() -> tuple[SimulationConfig, list[dict]]:
    """20 s of traffic with a 3 s error burst every 6 s, so bursts are in the sample."""
    config = SimulationConfig(count=40_000, rate=2000, start=START, seed=7, nodes=3, models=4,
                              burst_every_s=6, burst_len_s=3)
    return config, events_of(config)


def test_same_seed_same_events_other_seed_other_events():
    config = SimulationConfig(count=3000, start=START, seed=42)
    assert events_of(config) == events_of(config)
    assert events_of(config) != events_of(SimulationConfig(count=3000, start=START, seed=43))


def test_every_event_is_valid_v1(bursty):
    _, events = bursty
    for event in events:
        validate_event(event, "request")


def test_count_or_duration_sets_the_number_of_events():
    assert len(events_of(SimulationConfig(count=1234, start=START))) == 1234
    assert len(events_of(SimulationConfig(duration_s=1.5, rate=1000, start=START))) == 1500
    with pytest.raises(ConfigError):
        SimulationConfig(count=10, duration_s=1)
    with pytest.raises(ConfigError):
        SimulationConfig()


def test_timestamps_are_increasing_and_inside_the_run(bursty):
    config, events = bursty
    stamps = [e["timestamp"] for e in events]
    assert all(a < b for a, b in zip(stamps, stamps[1:]))
    assert START <= stamps[0] and stamps[-1] < START + config.total / config.rate


def test_nodes_models_and_request_ids(bursty):
    config, events = bursty
    assert {e["host.name"] for e in events} == {"node-00", "node-01", "node-02"}
    assert {e["gen_ai.request.model"] for e in events} == {p.name for p in profiles(4)}
    assert len({e["request.id"] for e in events}) == len(events)


def test_a_bigger_model_is_slower():
    events = events_of(SimulationConfig(count=20_000, start=START, error_rate=0))
    durations = defaultdict(list)
    for e in events:
        durations[e["gen_ai.request.model"]].append(e["gen_ai.server.request.duration"])
    median = {m: sorted(v)[len(v) // 2] for m, v in durations.items()}
    assert 0.3 < median["llama-3.1-8b-instruct"] < 2.0
    assert median["llama-3.1-70b-instruct"] > 2 * median["llama-3.1-8b-instruct"]


def test_bursts_hit_one_node_at_a_time(bursty):
    config, events = bursty
    errors = Counter()
    for e in events:
        rel = e["timestamp"] - START
        period = math.floor(rel / config.burst_every_s)
        if rel - period * config.burst_every_s >= config.burst_every_s - config.burst_len_s and "error.type" in e:
            errors[(period, e["host.name"])] += 1
    for period in range(3):
        sick = f"node-{period % config.nodes:02d}"
        others = sum(n for (p, node), n in errors.items() if p == period and node != sick)
        assert errors[(period, sick)] > 5 * max(others, 1)


def test_errors_have_no_finish_reason_and_successes_do(bursty):
    _, events = bursty
    kinds = Counter(e.get("error.type") for e in events)
    assert set(kinds) == {None, "timeout", "rate_limited", "oom", "internal"}
    assert all(("error.type" in e) != ("gen_ai.response.finish_reasons" in e) for e in events)


def test_truth_equals_a_recomputation(bursty, tmp_path):
    config, events = bursty
    truth = Truth(config.window_seconds)
    for chunk in generate(config):
        truth.add(chunk)
    expected = defaultdict(lambda: [0, 0, 0, 0])
    for e in events:
        row = expected[(math.floor(e["timestamp"] / 10) * 10, e["gen_ai.request.model"], e["host.name"])]
        row[0] += 1
        row[1] += "error.type" in e
        row[2] += e["gen_ai.usage.input_tokens"]
        row[3] += e["gen_ai.usage.output_tokens"]
    assert {(r["window_start"], r["model"], r["node"]): [r["requests"], r["errors"], r["input_tokens"],
            r["output_tokens"]] for r in truth.rows()} == dict(expected)
    assert truth.requests == len(events)

    path = tmp_path / "truth.jsonl"
    truth.write_jsonl(path)
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert lines == truth.rows()
    assert list(lines[0]) == ["window_start", "model", "node", "requests", "errors", "input_tokens", "output_tokens"]


def test_more_models_than_profiles_get_distinct_names():
    names = [p.name for p in profiles(8)]
    assert len(set(names)) == 8
