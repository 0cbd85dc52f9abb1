"""Peer benchmark: the fleetpulse job written as a plain faust (faust-streaming) app.

The job: consume the requests topic from the beginning and, per 10 s event-time
tumbling window, model and node, keep count, errors, input/output token sums and
a log2 latency histogram of ``gen_ai.server.request.duration``.

Two programs, the way faust's docs teach them:

``--mode table``
    an agent updating a windowed table,
    ``app.Table(...).tumbling(10, expires=...).relative_to(<event time>)``, once
    per event. Every update writes the window's value to the table's changelog
    topic (faust's own durability), with ``store="memory://"``.
``--mode take``
    an agent reading ``stream.take(1000, within=1)`` batches and aggregating them
    into a plain dict: no table, no changelog.

Messages are single JSON events or envelopes ``{"type": "batch", "events": [...]}``;
both are decoded by faust's ``json`` codec (orjson when installed).

It stops once it has processed ``--expected`` events and prints one line,
``PEER-RESULT {"seconds", "cpu_seconds", "events", "totals"}``, timed from the
first message the consumer hands to faust to the last event processed; CPU is
the whole process's (all threads) ``os.times()`` user+sys over that span.

Usage: python bench/peer_faust.py --bootstrap 127.0.0.1:9092 --topic T --group G \
    --expected N --partitions 6 --mode table|take
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from datetime import timedelta

import faust

WINDOW_S = 10


def bucket(duration: float) -> str:
    """Log bucket of a latency: 32 per doubling (str: table values round-trip through JSON)."""
    return str(math.floor(math.log2(max(duration, 1e-9)) * 32))


def add(agg: dict, ev: dict) -> dict:
    """Fold one request event into a window's aggregate (a fresh ``dict()`` at first)."""
    agg["count"] = agg.get("count", 0) + 1
    agg["errors"] = agg.get("errors", 0) + (ev.get("error.type") is not None)
    agg["input_tokens"] = agg.get("input_tokens", 0) + (ev.get("gen_ai.usage.input_tokens") or 0)
    agg["output_tokens"] = agg.get("output_tokens", 0) + (ev.get("gen_ai.usage.output_tokens") or 0)
    hist = agg.setdefault("hist", {})
    b = bucket(ev.get("gen_ai.server.request.duration") or 0.0)
    hist[b] = hist.get(b, 0) + 1
    return agg


def events_of(value: dict):
    return value["events"] if value.get("type") == "batch" else (value,)


def totals(aggregates) -> dict:
    out = {"windows": 0, "count": 0, "errors": 0, "input_tokens": 0, "output_tokens": 0, "hist": 0}
    for agg in aggregates:
        out["windows"] += 1
        for name in ("count", "errors", "input_tokens", "output_tokens"):
            out[name] += agg.get(name, 0)
        out["hist"] += sum(agg.get("hist", {}).values())
    return out


class Clock(faust.Sensor):
    """Wall and CPU time from the first message the consumer hands to faust to ``done()``.

    A sensor, so that the clock starts before faust decodes and buffers
    messages for the agent (``take(1000)`` would otherwise see its first batch
    only after up to 1000 messages were already consumed).
    """

    wall0 = cpu0 = None

    def on_message_in(self, tp, offset, message) -> None:
        if self.wall0 is None:
            self.wall0, self.cpu0 = time.perf_counter(), _cpu()

    def done(self, events: int, result: dict) -> None:
        wall, cpu = time.perf_counter() - self.wall0, _cpu() - self.cpu0
        report = {"seconds": wall, "cpu_seconds": cpu, "events": events, "totals": result}
        # fd 1 directly: a faust worker may have swapped sys.stdout for a logger.
        os.write(1, f"PEER-RESULT {json.dumps(report)}\n".encode())
        # Measured: leave now rather than wait for faust's shutdown (commits,
        # changelog flush, group leave), which is no part of the job's throughput.
        os._exit(0)


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def build(args: argparse.Namespace) -> faust.App:
    app = faust.App(
        args.group,
        broker=f"kafka://{args.bootstrap}",
        store="memory://",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        topic_partitions=args.partitions,  # a table's changelog must match its source topic
    )
    topic = app.topic(args.topic, value_serializer="json")
    clock = Clock()
    app.sensors.add(clock)
    seen = 0

    if args.mode == "table":
        # Event time is the event's own ``timestamp`` (epoch seconds). faust
        # expires windows against the wall clock, so replaying old data needs
        # ``expires`` beyond the data's age, or windows are dropped mid-run.
        windows = app.Table("requests", default=dict, partitions=args.partitions).tumbling(
            WINDOW_S, expires=timedelta(days=1)).relative_to(lambda ev: ev["timestamp"])

        @app.agent(topic)
        async def aggregate(stream):
            nonlocal seen
            async for value in stream:
                for ev in events_of(value):
                    # ``table[key].apply(op, value, event)`` is the public form of
                    # ``table[key] += value``; ``event`` only feeds relative_to(),
                    # so an envelope's events each land in their own window.
                    windows[(ev["gen_ai.request.model"], ev["host.name"])].apply(add, ev, ev)
                seen += len(value["events"]) if value.get("type") == "batch" else 1
                if seen >= args.expected:
                    clock.done(seen, totals(windows.table.data.values()))

    else:
        aggregates: dict = {}

        @app.agent(topic)
        async def aggregate(stream):  # noqa: F811 - one of the two agents is defined
            nonlocal seen
            async for values in stream.take(1000, within=1):
                for value in values:
                    for ev in events_of(value):
                        key = (int(ev["timestamp"] // WINDOW_S) * WINDOW_S, ev["gen_ai.request.model"],
                               ev["host.name"])
                        agg = aggregates.get(key)
                        if agg is None:
                            agg = aggregates[key] = {}
                        add(agg, ev)
                        seen += 1
                if seen >= args.expected:
                    clock.done(seen, totals(aggregates.values()))

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--expected", type=int, required=True, help="stop after this many events")
    parser.add_argument("--partitions", type=int, required=True, help="partitions of --topic")
    parser.add_argument("--mode", choices=("table", "take"), default="table")
    args = parser.parse_args()
    app = build(args)
    faust.Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False).execute_from_commandline()
    sys.exit(1)  # only reached when the worker stopped before --expected events


if __name__ == "__main__":
    main()
