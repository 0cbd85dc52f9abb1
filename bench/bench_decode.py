"""What decoding and validating request messages costs per event, no I/O.

Ways over the same bytes, simulated events (the shape
``fleetpulse.producers.simulator.generate`` gives the pipeline benchmarks):
- columnar: ``schemas.columnar.decode_columns`` on the whole batch (the
  Rust scanner of ``schemas.scan``, then the column checks), then
  ``from_arrow``: the worker's path, to columns;
- fast: ``schemas.fast.decode_requests`` on the whole batch (msgspec, C),
  then ``to_columns``: the path the scanner hands unusual messages to;
- validator: ``schemas.validate.decode_message`` per message (orjson + Python), no columns;
- orjson.loads per message, validating nothing, no columns: the floor of any dict decoder.

Wall time, one thread each (the scanner runs off the GIL, on the caller's thread).

Two batches: 10,000 single-event messages, and 20 envelopes of 500 events.
Each figure is the best of ``--repeats`` runs, in µs per event.

    python -m bench.bench_decode [--events 10000] [--envelope 500] [--repeats 7]
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import orjson

from fleetpulse.producers.simulator import SimulationConfig, generate
from fleetpulse.schemas import decode_message, encode_batch
from fleetpulse.schemas.columnar import decode_columns
from fleetpulse.schemas.fast import decode_requests
from fleetpulse.streams.windows.columns import from_arrow, to_columns

MAX_BYTES = 1 << 20


def _events(count: int, seed: int = 1) -> list[dict]:
    config = SimulationConfig(count=count, seed=seed, nodes=8, models=3, rate=50_000.0,
                              start=time.time() - 3600, pace="fast")
    return [e for chunk in generate(config) for e in chunk]


def _best_us(work: Callable[[], object], events: int, repeats: int) -> float:
    """Best wall time of ``repeats`` runs, in µs per event: the least disturbed by a shared machine."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best / events * 1e6


def run(events: int, envelope: int, repeats: int) -> list[dict]:
    """One row per batch shape: µs per event for each decoder."""
    data = _events(events)
    shapes = {
        f"{events:,} single-event messages": [orjson.dumps(e) for e in data],
        f"{events // envelope} envelopes of {envelope}": [encode_batch(data[i:i + envelope])
                                                           for i in range(0, events, envelope)],
    }
    rows = []
    for name, values in shapes.items():
        assert decode_requests(values, MAX_BYTES).slow == [], "the benchmark must measure the fast path"
        assert decode_columns(values, MAX_BYTES).unusual == 0, "the benchmark must measure the columnar path"
        rows.append({
            "batch": name,
            "columnar": _best_us(lambda: from_arrow(decode_columns(values, MAX_BYTES).events), events, repeats),
            "fast": _best_us(lambda: to_columns(decode_requests(values, MAX_BYTES).events), events, repeats),
            "validator": _best_us(lambda: [decode_message(v, "request", MAX_BYTES) for v in values], events, repeats),
            "orjson": _best_us(lambda: list(map(orjson.loads, values)), events, repeats),
        })
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| batch | columnar, to columns (µs/event) | msgspec, to columns (µs/event) | validator (µs/event) "
             "| orjson.loads only (µs/event) | columnar vs msgspec |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['batch']} | {r['columnar']:.2f} | {r['fast']:.2f} | {r['validator']:.2f} "
                     f"| {r['orjson']:.2f} | {r['fast'] / r['columnar']:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--envelope", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(markdown(run(args.events, args.envelope, args.repeats)))


if __name__ == "__main__":
    main()
