"""Run every benchmark in one go and write BENCHMARKS.md with the machine it ran on.

    .venv/bin/python -m bench.run [--quick]

Targets are reported as ratios measured in this one run, never asserted in
unit tests: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from bench import bench_pipeline, bench_recorder

OUT = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return (f"{cpu}, {os.cpu_count()} cores, {mem_gib:.0f} GiB RAM; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}; commit {commit or 'unknown'}; "
            f"run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls, for a smoke run")
    args = parser.parse_args()
    calls, repeats = (20_000, 2) if args.quick else (200_000, 5)
    print("bench: Recorder.record_request ...", file=sys.stderr)
    recorder = bench_recorder.run(calls=calls, repeats=repeats)
    print("bench: pipeline (broker, worker processes; a few minutes) ...", file=sys.stderr)
    pipeline = bench_pipeline.run(quick=args.quick)
    profile = bench_pipeline.profile_batch()
    text = "\n".join([
        "# Benchmarks",
        "",
        "Written by `python -m bench.run`; every figure below comes from that one run.",
        "",
        f"Machine: {machine()}",
        "",
        "## Pipeline",
        "",
        bench_pipeline.markdown(pipeline),
        "## Recorder.record_request (caller-thread cost)",
        "",
        bench_recorder.markdown(recorder),
        "## Where the worker's time goes",
        "",
        "cProfile of `process_batch` on 100,000 events in 500-event envelopes (decode, validate, "
        "window, sketch, rows; no I/O):",
        "",
        "```",
        profile,
        "```",
        "",
    ])
    OUT.write_text(text)
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
