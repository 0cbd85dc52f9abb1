"""The drift features and references, as settings name them (pure).

FLEETPULSE_DRIFT_FEATURES and FLEETPULSE_DRIFT_REFERENCE are parsed here, once,
when the settings load (fleetpulse/settings.py), so a typo stops the worker at
start-up with the setting named.
"""

from __future__ import annotations

from typing import Callable

from fleetpulse.errors import ConfigError

#: Feature -> (kind, column of request_windows holding its per-window histogram).
FEATURES = {
    "latency": ("numeric", "latency_buckets"),
    "ttft": ("numeric", "ttft_buckets"),
    "tpot": ("numeric", "tpot_buckets"),
    "input_tokens": ("numeric", "input_tokens_buckets"),
    "output_tokens": ("numeric", "output_tokens_buckets"),
    "queue_time": ("numeric", "queue_buckets"),
    "operation": ("categorical", "operations"),
    "finish_reason": ("categorical", "finish_reasons"),
    "output_outcome": ("categorical", "outcomes"),
    "error_type": ("categorical", "errors_by_type"),
}
REFERENCES = ("previous", "yesterday", "baseline")


def parse_features(text: str) -> list[str]:
    features = [f.strip() for f in text.split(",") if f.strip()]
    unknown = [f for f in features if f not in FEATURES]
    if unknown:
        raise ConfigError(f"FLEETPULSE_DRIFT_FEATURES: unknown {unknown}; choose from {', '.join(FEATURES)}")
    return features


def parse_references(text: str) -> Callable[[str], str]:
    """``previous`` or ``previous,llama-70b=baseline``: a default and per-model modes."""
    default, per_model = "previous", {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        model, _, mode = part.rpartition("=")
        if mode not in REFERENCES:
            raise ConfigError(f"FLEETPULSE_DRIFT_REFERENCE: {mode!r} is not previous, yesterday or baseline")
        if model:
            per_model[model] = mode
        else:
            default = mode
    return lambda model: per_model.get(model, default)
