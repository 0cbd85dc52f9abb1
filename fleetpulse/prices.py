"""The price table (FLEETPULSE_PRICES): parsed here, loaded into ClickHouse by the worker.

A small YAML (or JSON) file; infra/prices/example.yml is a commented example::

    models:            # by gen_ai.request.model; per 1M tokens
      llama-3.1-8b-instruct: {input: 0.10, output: 0.20, cached_input: 0.05}
    gpus:              # by gpu.name (gpu_windows.gpu_name); per GPU
      NVIDIA H100 80GB HBM3: {hourly: 2.50, energy_kwh: 0.15}
    nodes:             # by host.name; a node's price wins over its GPU type's
      node-00: {hourly: 3.00}

``cached_input`` defaults to ``input`` (no discount), ``energy_kwh`` to 0. One
currency throughout, whichever the file uses. The worker replaces the
``model_prices`` and ``gpu_prices`` tables with the file's rows when it starts
(sql/016_prices.sql has the cost views over them); with FLEETPULSE_PRICES
empty it leaves them as they are.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import yaml

from fleetpulse.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Prices:
    models: list[tuple[str, float, float, float]]  # model, input, output, cached input per 1M tokens
    gpus: list[tuple[str, str, float, float]]  # kind ("node" or "gpu"), name, hourly, energy per kWh


def parse_prices(text: str, where: str = "FLEETPULSE_PRICES") -> Prices:
    """The price table in ``text``; ConfigError naming the entry that is wrong."""
    try:
        root = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {exc}") from exc
    if not isinstance(root, dict) or set(root) - {"models", "gpus", "nodes"}:
        raise ConfigError(f"{where}: expected a mapping of models, gpus and nodes")
    models = [(name, _price(where, name, entry, "input"), _price(where, name, entry, "output"),
               _price(where, name, entry, "cached_input", _price(where, name, entry, "input")))
              for name, entry in _entries(where, root, "models", {"input", "output", "cached_input"})]
    gpus = [(kind, name, _price(where, name, entry, "hourly"), _price(where, name, entry, "energy_kwh", 0.0))
            for section, kind in (("gpus", "gpu"), ("nodes", "node"))
            for name, entry in _entries(where, root, section, {"hourly", "energy_kwh"})]
    return Prices(models, gpus)


def _entries(where: str, root: dict, section: str, keys: set[str]) -> list[tuple[str, dict]]:
    entries = root.get(section) or {}
    if not isinstance(entries, dict):
        raise ConfigError(f"{where}: {section} must map names to prices")
    for name, entry in entries.items():
        if not isinstance(entry, dict) or set(entry) - keys:
            raise ConfigError(f"{where}: {section}.{name}: expected a mapping with {', '.join(sorted(keys))}")
    return [(str(name), entry) for name, entry in entries.items()]


def _price(where: str, name: str, entry: dict, key: str, default: float | None = None) -> float:
    value = entry.get(key, default)
    if value is None:
        raise ConfigError(f"{where}: {name}: {key} is missing")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{where}: {name}: {key} must be a number >= 0, got {value!r}")
    return float(value)


def read_prices(path: str) -> Prices:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"FLEETPULSE_PRICES={path!r}: {exc.strerror}") from exc
    return parse_prices(text, f"FLEETPULSE_PRICES={path!r}")


def load_prices(ch, prices: Prices) -> None:
    """Replace the price tables with ``prices`` (``ch``: a fleetpulse.clickhouse.ClickHouse)."""
    ch.command("TRUNCATE TABLE model_prices")
    ch.command("TRUNCATE TABLE gpu_prices")
    token = f"prices:{time.time_ns()}"  # the tables have no dedup window; unique anyway
    if prices.models:
        ch.insert("model_prices", prices.models,
                  ("model", "input_per_million", "output_per_million", "cached_input_per_million"), dedup_token=token)
    if prices.gpus:
        ch.insert("gpu_prices", prices.gpus, ("kind", "name", "hourly", "energy_per_kwh"), dedup_token=token)
