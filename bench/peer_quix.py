"""Peer benchmark: the fleetpulse job written as a Quix Streams 3.x app.

The job: consume the requests topic from the beginning and, per 10 s event-time
tumbling window, model and node, keep count, errors, input/output token sums and
a log2 latency histogram of ``gen_ai.server.request.duration``.

Written the way Quix's docs teach it: ``app.dataframe(topic)``, event time from
the event's ``timestamp`` (a topic timestamp extractor for single events;
``set_timestamp`` after unpacking an envelope with ``apply(..., expand=True)``),
``group_by`` to key the stream by model and node (Quix windows are per message
key, and ignore messages without one; the requests topic is not keyed), then
``tumbling_window(...).reduce(...).current()``. State is Quix's default: RocksDB
with changelog topics.

Runs in its own virtualenv (Quix pins its own confluent-kafka); imports nothing
from fleetpulse. Stops once the windows hold ``--expected`` events and prints
one line, ``PEER-RESULT {"seconds", "cpu_seconds", "events", "totals"}``, timed
from the first message (when its event time is read) to the last window
update; CPU is the whole process's (all threads, librdkafka's included)
``os.times()`` user+sys over that span.

Usage: python bench/peer_quix.py --bootstrap 127.0.0.1:9092 --topic T --group G \
    --expected N --form single|envelope --state-dir DIR
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from datetime import timedelta

from quixstreams import Application

WINDOW = timedelta(seconds=10)
GRACE = timedelta(seconds=30)  # fleetpulse's default lateness


def bucket(duration: float) -> str:
    """Log bucket of a latency: 32 per doubling (str: state values round-trip through JSON)."""
    return str(math.floor(math.log2(max(duration, 1e-9)) * 32))


def initializer(ev: dict) -> dict:
    return reducer({"count": 0, "errors": 0, "input_tokens": 0, "output_tokens": 0, "hist": {}}, ev)


def reducer(agg: dict, ev: dict) -> dict:
    agg["count"] += 1
    agg["errors"] += ev.get("error.type") is not None
    agg["input_tokens"] += ev.get("gen_ai.usage.input_tokens") or 0
    agg["output_tokens"] += ev.get("gen_ai.usage.output_tokens") or 0
    hist = agg["hist"]
    b = bucket(ev.get("gen_ai.server.request.duration") or 0.0)
    hist[b] = hist.get(b, 0) + 1
    return agg


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--expected", type=int, required=True, help="stop after this many events")
    parser.add_argument("--form", choices=("single", "envelope"), required=True)
    parser.add_argument("--state-dir", required=True)
    args = parser.parse_args()

    clock: dict = {}

    def event_time_ms(ev: dict) -> int:
        if not clock:
            clock.update(wall0=time.perf_counter(), cpu0=_cpu())
        return int(ev["timestamp"] * 1000)

    app = Application(broker_address=args.bootstrap, consumer_group=args.group, auto_offset_reset="earliest",
                      state_dir=args.state_dir, loglevel="WARNING")
    if args.form == "single":
        topic = app.topic(args.topic, value_deserializer="json",
                          timestamp_extractor=lambda value, headers, timestamp, kind: event_time_ms(value))
        sdf = app.dataframe(topic)
    else:
        sdf = app.dataframe(app.topic(args.topic, value_deserializer="json"))
        sdf = sdf.apply(lambda envelope: envelope["events"], expand=True)
        sdf = sdf.set_timestamp(lambda value, key, timestamp, headers: event_time_ms(value))

    sdf = sdf.group_by(lambda ev: f'{ev["gen_ai.request.model"]}|{ev["host.name"]}', name="model_node")
    sdf = sdf.tumbling_window(WINDOW, grace_ms=GRACE).reduce(reducer=reducer, initializer=initializer).current()

    # .current() emits each window's aggregate after every update: keep the
    # latest per (key, window) and stop when their counts add up to --expected.
    latest: dict = {}
    counts: dict = {}
    seen = 0

    def track(window: dict, key, timestamp, headers) -> None:
        nonlocal seen
        agg, where = window["value"], (key, window["start"])
        seen += agg["count"] - counts.get(where, 0)
        counts[where], latest[where] = agg["count"], agg
        if seen >= args.expected:
            wall, cpu = time.perf_counter() - clock["wall0"], _cpu() - clock["cpu0"]
            totals = {"windows": len(latest), "hist": sum(sum(a["hist"].values()) for a in latest.values())}
            for name in ("count", "errors", "input_tokens", "output_tokens"):
                totals[name] = sum(a[name] for a in latest.values())
            report = {"seconds": wall, "cpu_seconds": cpu, "events": seen, "totals": totals}
            print(f"PEER-RESULT {json.dumps(report)}", flush=True)
            app.stop()

    sdf = sdf.update(track, metadata=True)
    app.run()


if __name__ == "__main__":
    main()
