"""The simulator's output quality signals and their exact truth (pure).

With ``SimulationConfig.quality`` on, each successful simulated request
carries what a Recorder derives from a response text (producers/quality.py):
``fleetpulse.output.refusal``, ``.empty`` and ``.repetition``, ``.format_ok``
for the share that asked for JSON, and ``gen_ai.usage.cache_read.input_tokens``.
Failed requests have no text, so no signals. The numbers come from an rng of
their own (seeded by the run's seed and the chunk), so a run without quality
draws exactly the events it always did.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from fleetpulse.errors import ConfigError
from fleetpulse.streams.windows.sketch import exact_quantile

EMPTY_SHARE = 0.005  # of the analysed answers: blank text
JSON_SHARE = 0.2  # of the analysed answers: the caller asked for JSON
JSON_FAILURE = 0.05  # of those: did not parse
CACHE_SHARE = 0.5  # of the successful requests: part of the prompt came from the cache


@dataclasses.dataclass(frozen=True)
class QualityShares:
    """Shares of successful requests: refused, truncated (finish reason
    ``length`` instead of ``stop``) and repetitive (repetition 0.2..0.95;
    the others repeat 0..0.05, half of them not at all)."""

    refusal: float = 0.0
    truncation: float = 0.0
    repetition: float = 0.0

    def __post_init__(self):
        if not all(0 <= s <= 1 for s in (self.refusal, self.truncation, self.repetition)):
            raise ConfigError("simulate: --refusal-share, --truncation-share and --repetition-share are in [0, 1]")


@dataclasses.dataclass
class Drawn:
    """Per event: -1 where absent (failed requests; format where none was asked)."""

    refusal: np.ndarray
    empty: np.ndarray
    repetition: np.ndarray  # NaN where absent
    format_ok: np.ndarray
    cache_read: np.ndarray  # -1 where absent


def draw(seed: int, first: int, shares: QualityShares, failed: np.ndarray, finish: np.ndarray,
         inputs: np.ndarray) -> tuple[Drawn, np.ndarray]:
    """The signals of one chunk, and its finish codes with the truncated share
    moved from stop (1) to length (2). A content_filter finish (3) is a refusal."""
    n = len(failed)
    rng = np.random.default_rng([seed, first, 17])
    ok = ~failed
    finish = np.where(ok & (finish == 1) & (rng.random(n) < shares.truncation), 2, finish)
    refusal = np.where(ok, ((rng.random(n) < shares.refusal) | (finish == 3)).astype(np.int64), -1)
    empty = np.where(ok, (rng.random(n) < EMPTY_SHARE).astype(np.int64), -1)
    repetitive = rng.random(n) < shares.repetition
    low = np.where(rng.random(n) < 0.5, 0.0, rng.uniform(0.0, 0.05, n))
    repetition = np.where(ok, np.round(np.where(repetitive, rng.uniform(0.2, 0.95, n), low), 6), np.nan)
    asked = ok & (rng.random(n) < JSON_SHARE)
    format_ok = np.where(asked, (rng.random(n) >= JSON_FAILURE).astype(np.int64), -1)
    cached = ok & (rng.random(n) < CACHE_SHARE)
    cache_read = np.where(cached, np.floor(inputs * rng.uniform(0.1, 0.9, n)), -1).astype(np.int64)
    return Drawn(refusal, empty, repetition, format_ok, cache_read), finish


def fields(d: Drawn) -> list[dict]:
    """The wire fields of each event of a chunk (an empty dict for a failed request)."""
    out = []
    for ref, emp, rep, fmt, cache in zip(d.refusal.tolist(), d.empty.tolist(), d.repetition.tolist(),
                                         d.format_ok.tolist(), d.cache_read.tolist()):
        event = {}
        if ref >= 0:
            event = {"fleetpulse.output.refusal": ref, "fleetpulse.output.empty": emp,
                     "fleetpulse.output.repetition": rep}
            if fmt >= 0:
                event["fleetpulse.output.format_ok"] = fmt
        if cache >= 0:
            event["gen_ai.usage.cache_read.input_tokens"] = cache
        out.append(event)
    return out


class QualityTruth:
    """Exact quality counts and repetition values per key (any hashable), from events."""

    COUNTS = ("analysed", "refusals", "empty_outputs", "format_checked", "format_failures", "truncations",
              "content_filtered", "cache_read_tokens")

    def __init__(self):
        self._counts: dict = {}
        self._repetition: dict = {}

    def add(self, key, e: dict) -> None:
        row = self._counts.get(key)
        if row is None:
            row = self._counts[key] = [0] * len(self.COUNTS)
            self._repetition[key] = []
        reason = (e.get("gen_ai.response.finish_reasons") or [None])[0]
        refusal = e.get("fleetpulse.output.refusal")
        fmt = e.get("fleetpulse.output.format_ok")
        row[0] += refusal is not None
        row[1] += refusal == 1
        row[2] += e.get("fleetpulse.output.empty") == 1
        row[3] += fmt is not None
        row[4] += fmt == 0
        row[5] += reason == "length"
        row[6] += reason == "content_filter"
        row[7] += e.get("gen_ai.usage.cache_read.input_tokens") or 0
        if e.get("fleetpulse.output.repetition") is not None:
            self._repetition[key].append(e["fleetpulse.output.repetition"])

    def row(self, key) -> dict:
        return dict(zip(self.COUNTS, self._counts.get(key, [0] * len(self.COUNTS))))

    def repetition_quantile(self, keys, q: float) -> float:
        """The exact q-quantile of the repetition of every event of ``keys``."""
        values = [v for k in keys for v in self._repetition.get(k, ())]
        return exact_quantile(np.array(values), q) if values else float("nan")
