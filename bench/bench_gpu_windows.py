"""What writing GPU windows costs the worker's sink thread, on chDB.

    .venv/bin/python -m bench.bench_gpu_windows [--gpus N] [--json]

One hour of 1 s samples for N GPUs is stored, then each grain (10 s, 1 m, 1 h)
is computed by the worker's own code (GpuWindowWriter), then late samples are
rewritten. The figure that matters is the share of one core the windows take
in steady state at 1 sample per GPU per second: one base window's INSERT ...
SELECT per window length (with its 60 s counter look-back and the gauges'
query), plus each 1 m and 1 h window as it closes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timezone

import orjson

from fleetpulse.clickhouse import ClickHouse
from fleetpulse.migrate import migrate
from fleetpulse.settings import load_settings
from fleetpulse.streams.gpu.samples import COLUMNS
from fleetpulse.streams.gpu.windows import GpuWindowWriter, window_sql

HOUR = 3600


def run(gpus: int = 256) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        ch = ClickHouse(load_settings(environ={}, clickhouse_url=f"chdb://{tmp}/chdb"))
        migrate(ch, log=lambda _: None)
        start = (int(time.time()) // HOUR - 2) * HOUR
        began = time.perf_counter()
        for second in range(0, HOUR, 300):  # five minutes per insert, like a steady stream of batches
            ch.insert("gpu_samples", [_row(start + t, g) for t in range(second, second + 300) for g in range(gpus)],
                      COLUMNS, f"bench-{second}")
        insert_s = time.perf_counter() - began
        writer = GpuWindowWriter(ch.settings, ch)
        grains = {}
        for level in writer.levels:
            began = time.perf_counter()
            ch.command(window_sql(level.table, level.seconds), parameters={"lo": start, "hi": start + HOUR})
            grains[level.table] = time.perf_counter() - began
            level.next_start = start + HOUR
        steady = []
        base = writer.levels[0]
        for w in range(start + 1800, start + 2000, base.seconds):  # a tick that closes one base window
            began = time.perf_counter()
            ch.command(window_sql(base.table, base.seconds), parameters={"lo": w, "hi": w + base.seconds})
            writer.publish_latest(w, w + base.seconds)
            steady.append(time.perf_counter() - began)
        steady_s = sorted(steady)[len(steady) // 2]
        late = [_row(start + 1800.5 + i, i % gpus) for i in range(gpus)]
        ch.insert("gpu_samples", late, COLUMNS, "bench-late")
        began = time.perf_counter()
        writer.rewrite_late(late)
        late_s = time.perf_counter() - began
        rows = {t: ch.query(f"SELECT count() FROM {t} FINAL").result_rows[0][0] for t in grains}
        ch.close()
    samples = gpus * HOUR
    return {"gpus": gpus, "samples": samples, "insert_s": insert_s, "grains": grains, "rows": rows,
            "late_s": late_s, "late_samples": len(late), "steady_s": steady_s,
            # Compute seconds per second of fleet time in steady state: one base window
            # per window length, a minute every 60 s and an hour every 3600 s.
            "core_share": steady_s / base.seconds + grains["gpu_windows_1m"] / HOUR + grains["gpu_windows_1h"] / HOUR}


def _row(t: float, gpu: int) -> list:
    return [datetime.fromtimestamp(t, tz=timezone.utc), f"node-{gpu // 8}", f"GPU-{gpu}", gpu % 8, "H100",
            50.0 + gpu % 50, 20.0, 40 * 2**30, 80 * 2**30, 60.0, 400.0, 700.0, 1e6 + 400.0 * t, 1980.0, 2619.0,
            0, 0, 1e5, 2e5, 0]


def markdown(r: dict) -> str:
    lines = [f"One hour of 1 s samples for {r['gpus']:,} GPUs ({r['samples']:,} samples), stored in "
             f"{r['insert_s']:.1f} s; each grain computed by `GpuWindowWriter`'s INSERT ... SELECT:", "",
             "| grain | rows written | seconds | samples read/s |", "|---|---|---|---|"]
    for table, seconds in r["grains"].items():
        lines.append(f"| {table} | {r['rows'][table]:,} | {seconds:.2f} | {r['samples'] / seconds:,.0f} |")
    lines += ["", f"Rewriting the windows {r['late_samples']:,} late samples (one per GPU) touch, all grains: "
                  f"{r['late_s']:.2f} s.",
              "",
              f"Steady state, one newly closed base window for every GPU (its INSERT ... SELECT, 60 s of "
              f"look-back for the counters, and the gauges' query): median {r['steady_s'] * 1000:.0f} ms.",
              "",
              f"Share of one core the three grains take at 1 sample per GPU per second (steady base windows, "
              f"plus 1 m and 1 h as they close): {r['core_share']:.1%} for {r['gpus']:,} GPUs "
              f"(target < 10%, ratio {r['core_share'] / 0.10:.2f}x).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, default=256)
    parser.add_argument("--json", action="store_true", help="print the result as JSON (for bench.run)")
    args = parser.parse_args()
    result = run(args.gpus)
    print(orjson.dumps(result).decode() if args.json else markdown(result))


if __name__ == "__main__":
    sys.exit(main())
