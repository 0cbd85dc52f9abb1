"""The price table file (FLEETPULSE_PRICES): parsed, defaulted, refused in one line."""

from pathlib import Path

import pytest

from fleetpulse.errors import ConfigError
from fleetpulse.prices import Prices, parse_prices, read_prices

ROOT = Path(__file__).resolve().parents[3]


def test_defaults_and_both_gpu_kinds():
    prices = parse_prices("models: {a: {input: 1, output: 2}, b: {input: 1, output: 2, cached_input: 0.5}}\n"
                          "gpus: {H100: {hourly: 2.5, energy_kwh: 0.1}}\nnodes: {n1: {hourly: 3}}")
    assert prices == Prices([("a", 1.0, 2.0, 1.0), ("b", 1.0, 2.0, 0.5)],
                            [("gpu", "H100", 2.5, 0.1), ("node", "n1", 3.0, 0.0)])
    assert parse_prices('{"models": {"a": {"input": 1, "output": 2}}}').models == [("a", 1.0, 2.0, 1.0)]  # JSON too
    assert parse_prices("") == Prices([], [])


@pytest.mark.parametrize(("text", "message"), [
    ("models: {a: {input: 1}}", "a: output is missing"),
    ("models: {a: {input: -1, output: 1}}", "a: input must be a number >= 0"),
    ("models: {a: {input: x, output: 1}}", "a: input must be a number >= 0"),
    ("models: {a: {input: 1, output: 1, outptu: 2}}", "models.a: expected a mapping"),
    ("tenants: {}", "expected a mapping of models, gpus and nodes"),
    ("gpus: [1, 2]", "gpus must map names to prices"),
    ("models: {a: [", "not valid YAML"),
])
def test_mistakes_are_named(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_prices(text)


def test_the_shipped_example_parses_and_prices_the_simulated_fleet():
    from fleetpulse.producers.simulator import PROFILES
    prices = read_prices(str(ROOT / "infra/prices/example.yml"))
    assert {p.name for p in PROFILES} <= {m[0] for m in prices.models}
    assert ("gpu", "Simulated H100 80GB", 2.5, 0.15) in prices.gpus
    with pytest.raises(ConfigError, match="FLEETPULSE_PRICES='/nonexistent'"):
        read_prices("/nonexistent")
