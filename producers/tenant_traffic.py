"""Simulated tenants: a known heavy-hitter distribution, spikes, and the
exact per-tenant truth (pure).

``--tenants N`` gives each simulated request a tenant ``tenant-000000`` ...
drawn from a Zipf law over the N ranks (P(rank r) proportional to r^-s,
``--tenant-zipf S``, 1.1 by default): tenant-000000 is the heaviest, then
tenant-000001, and so on, so the true top K are known in advance (and
counted exactly in ``TenantTruth``). ``--tenant-spike TENANT@SECONDS`` sends
a share of all traffic (``x SHARE``, 0.5 by default) to one tenant for one
window from that second of event time on: one user's traffic spikes.
Tenants are drawn from a generator of their own, so the rest of the
simulated traffic is the same with and without them.
"""

from __future__ import annotations

import collections
import dataclasses
from pathlib import Path
from typing import Iterable

import numpy as np
import orjson

from fleetpulse.errors import ConfigError
from fleetpulse.streams.windows.grid import window_starts


def tenant_name(rank: int) -> str:
    return f"tenant-{rank:06d}"


@dataclasses.dataclass(frozen=True)
class TenantSpike:
    tenant: str
    after_s: float
    share: float = 0.5

    @classmethod
    def parse(cls, text: str) -> "TenantSpike":
        """``tenant-000042@300`` or ``tenant-000042@300x0.8``."""
        try:
            tenant, rest = text.rsplit("@", 1)
            after, _, share = rest.partition("x")
            spike = cls(tenant.strip(), float(after), float(share) if share else 0.5)
        except ValueError as exc:
            raise ConfigError(f"--tenant-spike {text!r}: expected TENANT@SECONDS[xSHARE], "
                              "e.g. tenant-000042@300") from exc
        if not spike.tenant or not 0 < spike.share <= 1:
            raise ConfigError(f"--tenant-spike {text!r}: a tenant name and a share in (0, 1]")
        return spike


class TenantDraw:
    """Draws tenants for chunks of simulated events, numpy per chunk."""

    def __init__(self, tenants: int, zipf: float, seed: int, spikes: Iterable[TenantSpike] = (),
                 window_seconds: int = 10):
        if tenants < 1 or zipf <= 0:
            raise ConfigError("simulate: --tenants must be >= 1 and --tenant-zipf > 0")
        weights = np.arange(1, tenants + 1, dtype=np.float64) ** -zipf
        self._cdf = np.cumsum(weights / weights.sum())
        self._rng = np.random.default_rng([seed, 0x7E4A47])
        self._spikes = tuple(spikes)
        self._window = window_seconds
        self._names: dict[int, str] = {}

    def assign(self, events: list[dict], start: float) -> None:
        """Set each event's ``fleetpulse.tenant``."""
        n = len(events)
        ranks = np.minimum(np.searchsorted(self._cdf, self._rng.random(n)), len(self._cdf) - 1).tolist()
        names = [self._names.get(r) or self._names.setdefault(r, tenant_name(r)) for r in ranks]
        if self._spikes:
            rel = np.fromiter((e["timestamp"] for e in events), np.float64, n) - start
            draw = self._rng.random(n)
            for spike in self._spikes:
                hit = (rel >= spike.after_s) & (rel < spike.after_s + self._window) & (draw < spike.share)
                for i in np.flatnonzero(hit).tolist():
                    names[i] = spike.tenant
        for event, name in zip(events, names):
            event["fleetpulse.tenant"] = name


class TenantTruth:
    """Exact (requests, errors, input tokens, output tokens) per (window, tenant)."""

    def __init__(self, window_seconds: int):
        self.window_seconds = window_seconds
        self._rows: dict[tuple[int, str], list[int]] = collections.defaultdict(lambda: [0, 0, 0, 0])

    def add(self, events: list[dict]) -> None:
        stamps = np.fromiter((e["timestamp"] for e in events), dtype=np.float64, count=len(events))
        for window, e in zip(window_starts(stamps, self.window_seconds).tolist(), events):
            tenant = e.get("fleetpulse.tenant")
            if tenant is None:
                continue
            row = self._rows[(window, tenant)]
            row[0] += 1
            row[1] += e.get("error.type") is not None
            row[2] += e["gen_ai.usage.input_tokens"]
            row[3] += e["gen_ai.usage.output_tokens"]

    def totals(self) -> dict[str, tuple[int, int, int, int]]:
        """Per tenant, all windows summed."""
        out: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0, 0])
        for (_, tenant), row in self._rows.items():
            out[tenant] = [a + b for a, b in zip(out[tenant], row)]
        return {t: tuple(v) for t, v in out.items()}

    def top(self, k: int, window: int | None = None) -> list[tuple[str, int]]:
        """The k heaviest tenants by requests (of one window, or of all), heaviest first."""
        counts: collections.Counter = collections.Counter()
        for (w, tenant), row in self._rows.items():
            if window is None or w == window:
                counts[tenant] += row[0]
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]

    def rows(self) -> list[dict]:
        return [{"window_start": w, "tenant": t, "requests": r, "errors": e, "input_tokens": i, "output_tokens": o}
                for (w, t), (r, e, i, o) in sorted(self._rows.items())]

    def write_jsonl(self, path: str | Path) -> None:
        Path(path).write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in self.rows()))
