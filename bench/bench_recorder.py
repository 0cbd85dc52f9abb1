"""What ``Recorder.record_request`` costs the inference server's own thread.

The target is <= 5 µs per call. Calls are timed one by one (``perf_counter_ns``
around each, so the tail shows: GIL hand-offs to the background thread, GC)
while the background thread is running and producing, against an unreachable
broker by default (the producer queues; nothing is measured on the network) or
a real one with ``--bootstrap``. The timer's own cost is measured and shown,
not subtracted, so the numbers are an upper bound.

    python bench/bench_recorder.py [--calls 200000] [--repeats 5] [--bootstrap HOST:PORT --topic T]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from fleetpulse.errors import KafkaUnavailable
from fleetpulse.producers.recorder import Recorder

TARGET_US = 5.0
UNREACHABLE = "127.0.0.1:1"
_FINISH = ["stop"]
# Enough librdkafka queue for every repeat's events, so the unreachable default
# measures the accept path and not drops.
_PRODUCER = {"queue.buffering.max.kbytes": 2 * 1024 * 1024}


def _timer_overhead_ns(n: int) -> float:
    clock, samples = time.perf_counter_ns, np.empty(n, dtype=np.int64)
    for i in range(n):
        t0 = clock()
        samples[i] = clock() - t0
    return float(np.median(samples))


def _one_repeat(bootstrap: str, topic: str, calls: int) -> tuple[np.ndarray, float, int]:
    """Per-call ns, mean ns from one block timing, and drops, for one fresh recorder."""
    recorder = Recorder(bootstrap, topic, max_buffer=calls + calls // 10 + 1, producer_config=_PRODUCER)
    record, clock = recorder.record_request, time.perf_counter_ns
    samples = np.empty(calls, dtype=np.int64)
    for i in range(calls):
        t0 = clock()
        record("llama-3.1-8b-instruct", "node-00", 0.5, ttft=0.05, tpot=0.01, input_tokens=512,
               output_tokens=128, finish_reasons=_FINISH, operation="chat")
        samples[i] = clock() - t0
    t0 = clock()
    for _ in range(calls // 10):
        record("llama-3.1-8b-instruct", "node-00", 0.5, ttft=0.05, tpot=0.01, input_tokens=512,
               output_tokens=128, finish_reasons=_FINISH, operation="chat")
    mean_ns = (clock() - t0) / (calls // 10)
    dropped = recorder.dropped
    try:
        recorder.close(timeout=0.1 if bootstrap == UNREACHABLE else 30)
    except KafkaUnavailable:
        if bootstrap != UNREACHABLE:
            raise
    return samples, mean_ns, dropped


def _floor_repeat(calls: int) -> np.ndarray:
    """Per-call ns of the same timed loop around the least record_request can
    do (append one 19-field tuple to a list), with no Recorder and no thread:
    what the machine itself adds to the tail."""
    buffer, clock, now = [], time.perf_counter_ns, time.time
    samples = np.empty(calls, dtype=np.int64)
    for i in range(calls):
        t0 = clock()
        buffer.append((now(), "llama-3.1-8b-instruct", "node-00", 0.5, 0.05, 0.01, None, 512, 128, None, _FINISH,
                       "chat", None, None, None, None, None, None, None))
        samples[i] = clock() - t0
    return samples


def run(calls: int = 200_000, repeats: int = 5, bootstrap: str = UNREACHABLE,
        topic: str = "fleetpulse.bench") -> dict:
    """Time ``calls`` record_request calls ``repeats`` times; all times in µs.

    On a real broker ``topic`` must exist (or the broker auto-creates topics)."""
    overhead_ns = _timer_overhead_ns(100_000)
    rows, pooled, floor, dropped = [], [], [], 0
    for _ in range(repeats):
        floor.append(_floor_repeat(calls))
        samples, mean_ns, repeat_dropped = _one_repeat(bootstrap, topic, calls)
        pooled.append(samples)
        dropped += repeat_dropped
        rows.append({"median_us": np.median(samples) / 1e3, "p99_us": np.percentile(samples, 99) / 1e3,
                     "p999_us": np.percentile(samples, 99.9) / 1e3, "mean_us": mean_ns / 1e3})
    allsamples = np.concatenate(pooled)
    median, p99, p999 = (np.percentile(allsamples, q) / 1e3 for q in (50, 99, 99.9))
    return {
        "bench": "recorder.record_request", "bootstrap": bootstrap, "calls": calls, "repeats": repeats,
        "target_us": TARGET_US, "median_us": float(median), "p99_us": float(p99), "p999_us": float(p999),
        "mean_us": float(np.median([r["mean_us"] for r in rows])), "timer_overhead_us": overhead_ns / 1e3,
        "p99_over_target": float(p99 / TARGET_US), "dropped": dropped, "per_repeat": rows,
        "floor_p99_us": float(np.percentile(np.concatenate(floor), 99) / 1e3),
    }


def markdown(result: dict) -> str:
    lines = [f"record_request cost on the caller's thread ({result['calls']:,} calls x {result['repeats']}, "
             f"broker {result['bootstrap']}, target {result['target_us']:g} µs)", "",
             "| repeat | median µs | p99 µs | p99.9 µs | mean µs (block-timed) |", "|---|---|---|---|---|"]
    for i, r in enumerate(result["per_repeat"], 1):
        lines.append(f"| {i} | {r['median_us']:.3f} | {r['p99_us']:.3f} | {r['p999_us']:.3f} | {r['mean_us']:.3f} |")
    lines.append(f"| all | {result['median_us']:.3f} | {result['p99_us']:.3f} | {result['p999_us']:.3f} "
                 f"| {result['mean_us']:.3f} |")
    lines += ["", f"p99 / target = {result['p99_over_target']:.2f}; timer overhead per sample "
              f"{result['timer_overhead_us']:.3f} µs (included); dropped {result['dropped']}"]
    if "floor_p99_us" in result:
        lines += ["", f"The machine's floor, in the same run: the same timed loop around a bare append of one "
                  f"19-field tuple to a list (no Recorder, no background thread) has a p99 of "
                  f"{result['floor_p99_us']:.3f} µs."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--bootstrap", default=UNREACHABLE, help="default: unreachable (the producer only queues)")
    parser.add_argument("--topic", default="fleetpulse.bench", help="must exist on a real broker")
    args = parser.parse_args()
    print(markdown(run(args.calls, args.repeats, args.bootstrap, args.topic)))


if __name__ == "__main__":
    main()
