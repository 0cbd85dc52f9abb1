"""What the response-text quality signals cost (producers/quality.py).

Two numbers: the caller's side of ``Recorder.record_request`` with and without
``text=`` (the text is only carried to the background thread, so the two
should match), and the background thread's analysis per call by text length
(refusal phrases, blank check, word trigrams, and a JSON parse when
``expect_format="json"``).

    python bench/bench_quality.py [--calls 50000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from fleetpulse.errors import KafkaUnavailable
from fleetpulse.producers.quality import analyse
from fleetpulse.producers.recorder import Recorder

UNREACHABLE = "127.0.0.1:1"
_WORDS = ("the model answered the question with a short and useful reply about gpus and queues "
          "while the fleet kept serving tokens at a steady pace").split()


def _text(chars: int) -> str:
    words, size, i = [], 0, 0
    while size < chars:
        words.append(_WORDS[i % len(_WORDS)] if i % 7 else f"w{i}")
        size += len(words[-1]) + 1
        i += 1
    return " ".join(words)[:chars]


def caller_side(calls: int, text: str | None) -> float:
    """Median ns per record_request call on the caller's thread."""
    recorder = Recorder(UNREACHABLE, "bench", max_buffer=calls + 1,
                        producer_config={"queue.buffering.max.kbytes": 2 * 1024 * 1024})
    record, clock, samples = recorder.record_request, time.perf_counter_ns, np.empty(calls, dtype=np.int64)
    for i in range(calls):
        t0 = clock()
        record("llama-3.1-8b-instruct", "node-00", 0.5, ttft=0.05, input_tokens=512, output_tokens=128,
               finish_reasons=["stop"], text=text)
        samples[i] = clock() - t0
    try:
        recorder.close(timeout=0.1)
    except KafkaUnavailable:
        pass
    return float(np.median(samples))


def analysis(chars: int, expect_format: str | None, repeats: int) -> float:
    """Mean µs per analysed response of ``chars`` characters (the background thread's cost)."""
    text = _text(chars)
    t0 = time.perf_counter()
    for _ in range(repeats):
        analyse(text, ["stop"], expect_format)
    return (time.perf_counter() - t0) / repeats * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50_000)
    args = parser.parse_args()
    without, with_text = caller_side(args.calls, None), caller_side(args.calls, _text(2000))
    print(f"record_request, caller's thread (median): without text {without / 1000:.2f} µs, "
          f"with a 2,000-character text {with_text / 1000:.2f} µs")
    print("background analysis per response (mean µs):")
    print(f"{'chars':>8} {'plain':>10} {'json asked':>11}")
    for chars in (0, 100, 1_000, 4_000, 16_000, 64_000):
        repeats = max(20, 200_000 // max(chars, 100))
        print(f"{chars:>8} {analysis(chars, None, repeats):>10.1f} {analysis(chars, 'json', repeats):>11.1f}")


if __name__ == "__main__":
    main()
