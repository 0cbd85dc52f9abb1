"""What tenants add to the worker's batch math, per event, in one run.

The same simulated events are processed (decode, columns, windows, tenant
rows, Native blocks, the Space-Saving update) three ways: without a tenant
(an old producer), with a tenant out of 100,000 (Zipf), and with 50,000
distinct tenants in one 50,000-event batch (the worst case: every event its
own tenant). Ratios between them, in one run, are the cost of the feature;
the tenant stages are also timed on their own.

    .venv/bin/python -m bench.bench_tenants [--events 50000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from fleetpulse.producers.simulator import SimulationConfig, generate
from fleetpulse.schemas import encode_batch
from fleetpulse.settings import load_settings
from fleetpulse.streams.prometheus.tenants import TenantTopK
from fleetpulse.streams.windows.batch import MessageBatch, process_batch
from fleetpulse.streams.windows.columns import Coded
from fleetpulse.streams.windows.tenants import aggregate_tenants


def _messages(events: list[dict]) -> MessageBatch:
    values = [encode_batch(events[i:i + 500]) for i in range(0, len(events), 500)]
    n = len(values)
    return MessageBatch("t", np.zeros(n, dtype=np.int64), np.arange(n, dtype=np.int64), values)


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n = args.events
    config = SimulationConfig(count=n, rate=5000.0, start=time.time() - 3600, seed=1, pace="fast")
    plain = [e for chunk in generate(config) for e in chunk]
    zipf = [e for chunk in generate(SimulationConfig(**{**config.__dict__, "tenants": 100_000})) for e in chunk]
    distinct = [{**e, "fleetpulse.tenant": f"tenant-{i:06d}"} for i, e in enumerate(plain)]
    settings = load_settings(environ={})
    results = {}
    for name, events in (("no tenant", plain), ("100k tenants, Zipf", zipf), ("every event its own tenant", distinct)):
        batch = _messages(events)

        def run() -> None:
            result = process_batch(batch, {}, window_seconds=10, lateness=30, max_bytes=1 << 20, keep_events=False)
            result.window_block()
            if result.tenants is not None and len(result.tenants):
                result.tenant_block()
                TenantTopK(settings, worker="bench").observe(result.tenants)

        results[name] = _best(run, args.repeat)
    base = results["no tenant"]
    print(f"batch math per event ({n:,} events a batch, best of {args.repeat}):")
    for name, seconds in results.items():
        print(f"  {name:28s} {seconds / n * 1e6:7.3f} us/event  ({seconds / base:5.2f}x no tenant, "
              f"+{(seconds - base) / n * 1e6:.3f} us/event)")
    result = process_batch(_messages(distinct), {}, window_seconds=10, lateness=30, max_bytes=1 << 20,
                           keep_events=False)
    cols = result.columns
    stages = {
        "tenant column (Coded.of)": lambda: Coded.of([e["fleetpulse.tenant"] for e in distinct]),
        "aggregate_tenants": lambda: aggregate_tenants(cols, 10),
        "tenant Native block": result.tenant_block,
        "Space-Saving update": lambda: TenantTopK(settings, worker="bench").observe(result.tenants),
    }
    print("tenant stages, every event its own tenant:")
    for name, fn in stages.items():
        print(f"  {name:28s} {_best(fn, args.repeat) / n * 1e6:7.3f} us/event")


if __name__ == "__main__":
    main()
