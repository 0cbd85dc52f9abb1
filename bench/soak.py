"""Soak: a steady stream with churning node names, and the worker's memory over time.

A real local broker and a real worker process (default settings, chDB). For
``--minutes`` the bench sends ``--rate`` request events per second of event
time that follows the clock, in 500-event envelopes, from ``--models`` models
and ``--nodes`` node names of which ``--active`` are live at any moment: the
live set slides, so by the end every name has come and gone. Every 10 s it
samples the worker's RSS, events counted and consumer lag. At the end it waits
for the lag to drain, checks that ClickHouse holds exactly what was sent, and
reports the RSS growth over the run's second half (least squares, MiB/min).

    python -m bench.soak                  # 10 minutes, 3,000 events/s, 50 models, 20,000 nodes
    python -m bench.soak --write          # ... and put the result into BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import tempfile
import threading
import time
import urllib.error
import uuid
from pathlib import Path

import numpy as np
from confluent_kafka import Producer

from fleetpulse.localkafka import LocalKafka, free_port
from fleetpulse.schemas import encode_batch
from fleetpulse.settings import load_settings
from fleetpulse.topics import ensure_topics
from tests.integration.workers import WorkerProcess, another_worker, metric_value

SAMPLE_EVERY_S = 10.0
ENVELOPE = 500
MARK_BEGIN, MARK_END = "<!-- soak: written by python -m bench.soak --write -->", "<!-- /soak -->"


@dataclasses.dataclass
class Sample:
    elapsed_s: float
    rss_mib: float
    anon_mib: float  # RssAnon: heap and stacks; the rest of RSS is the chDB library's code pages
    clickhouse_mib: float  # what the embedded ClickHouse engine tracks (MemoryTracking)
    threads: int
    events_in: float
    lag: float


class Fleet:
    """Events of ``models`` models on a sliding window of ``active`` out of ``nodes`` node names."""

    def __init__(self, models: int, nodes: int, active: int, duration_s: float, seed: int = 7):
        self.models = [f"model-{i:02d}" for i in range(models)]
        self.nodes, self.active, self.duration_s = nodes, active, duration_s
        self.rng = np.random.default_rng(seed)
        self.sent = 0

    def second(self, elapsed_s: float, rate: int, now: float) -> list[bytes]:
        """One second's events, as envelopes."""
        first = int((self.nodes - self.active) * min(1.0, elapsed_s / self.duration_s))
        rng = self.rng
        nodes = first + rng.integers(0, self.active, rate)
        models = rng.integers(0, len(self.models), rate)
        latency = rng.lognormal(0.0, 0.6, rate)
        errors = rng.random(rate) < 0.01
        times = now + rng.random(rate)
        events = []
        for i in range(rate):
            self.sent += 1
            events.append({
                "type": "request", "version": 1, "timestamp": float(times[i]), "request.id": f"s{self.sent}",
                "trace_id": f"{self.sent:032x}", "gen_ai.request.model": self.models[models[i]],
                "host.name": f"node-{nodes[i]:05d}", "gen_ai.server.request.duration": float(latency[i]),
                "gen_ai.server.time_to_first_token": float(latency[i]) * 0.1,
                "gen_ai.server.time_per_output_token": 0.02, "gen_ai.usage.input_tokens": 512,
                "gen_ai.usage.output_tokens": 128, "error.type": "timeout" if errors[i] else None,
            })
        return [encode_batch(events[i:i + ENVELOPE]) for i in range(0, len(events), ENVELOPE)]


def send(settings, fleet: Fleet, rate: int, duration_s: float, stop: threading.Event) -> None:
    producer = Producer({"bootstrap.servers": settings.bootstrap, "compression.type": "lz4", "linger.ms": 20})
    start = time.time()
    tick = 0
    while not stop.is_set() and tick < duration_s:
        for value in fleet.second(tick, rate, start + tick):
            producer.produce(settings.topic("requests"), value)
        producer.poll(0)
        tick += 1
        stop.wait(max(0.0, start + tick - time.time()))
    producer.flush(60)


def _tracked(worker: WorkerProcess) -> float:
    """ClickHouse's tracked memory. The worker runs one user query at a time and
    answers 429 to a second: someone else querying it must not end the soak."""
    for _ in range(50):
        try:
            return worker.scalar("SELECT value FROM system.metrics WHERE metric = 'MemoryTracking'") or 0
        except urllib.error.HTTPError as exc:
            if exc.code != 429:
                raise
            time.sleep(0.1)
    raise RuntimeError("the worker answered 429 to every query for 5 s")


def sample(worker: WorkerProcess, started: float) -> Sample:
    text = worker.metrics()
    tracked = _tracked(worker)
    status = worker.status()  # one read: RSS and its anonymous part from the same moment
    return Sample(time.monotonic() - started, int(status["VmRSS"].split()[0]) / 1024,
                  int(status["RssAnon"].split()[0]) / 1024,
                  tracked / 2**20, int(status["Threads"]), metric_value(text, "fleetpulse_events_in_total"),
                  metric_value(text, "fleetpulse_consumer_lag_messages"))


def slope_mib_per_min(samples: list[Sample]) -> tuple[float, float]:
    """Least-squares RSS slope over the samples, and its standard error, in MiB/min."""
    x = np.array([s.elapsed_s / 60 for s in samples])
    y = np.array([s.rss_mib for s in samples])
    (slope, intercept), cov = np.polyfit(x, y, 1, cov=True)
    return float(slope), float(np.sqrt(cov[0, 0]))


def run(minutes: float, rate: int, models: int, nodes: int, active: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="fleetpulse-soak-"))
    base = load_settings(environ={}, home=tmp / "home", kafka_port=free_port(), topic_prefix=f"soak{uuid.uuid4().hex[:6]}.")
    broker = LocalKafka(base)
    broker.start()
    worker = None
    try:
        settings = another_worker(base, tmp)
        ensure_topics(settings)
        worker = WorkerProcess(settings, tmp / "worker.log").start()
        duration_s = minutes * 60
        fleet, stop = Fleet(models, nodes, active, duration_s), threading.Event()
        sender = threading.Thread(target=send, args=(settings, fleet, rate, duration_s, stop), daemon=True)
        started = time.monotonic()
        samples = [sample(worker, started)]
        sender.start()
        print(f"soak: {minutes:g} min at {rate}/s, {models} models, {nodes} nodes ({active} live at a time)",
              file=sys.stderr)
        while sender.is_alive():
            time.sleep(max(0.0, samples[-1].elapsed_s + SAMPLE_EVERY_S - (time.monotonic() - started)))
            samples.append(sample(worker, started))
            s = samples[-1]
            print(f"  {s.elapsed_s:6.0f} s  RSS {s.rss_mib:7.1f} MiB (anon {s.anon_mib:6.1f}, ClickHouse "
                  f"{s.clickhouse_mib:5.1f}, {s.threads} threads)  events {s.events_in:>10,.0f}  lag {s.lag:>4,.0f}",
                  file=sys.stderr)
        deadline = time.monotonic() + 300
        while metric_value(worker.metrics(), "fleetpulse_events_in_total") < fleet.sent and time.monotonic() < deadline:
            time.sleep(1)
        stored = worker.scalar("SELECT sum(requests) FROM request_windows")
        distinct = worker.scalar("SELECT uniqExact(node) FROM request_windows")
        second_half = [s for s in samples if s.elapsed_s >= duration_s / 2]
        slope, error = slope_mib_per_min(second_half)
        return {"minutes": minutes, "rate": rate, "models": models, "nodes": nodes, "active": active,
                "sent": fleet.sent, "stored": stored, "distinct_nodes": distinct,
                "samples": [dataclasses.asdict(s) for s in samples],
                "idle_mib": samples[0].rss_mib, "peak_mib": max(s.rss_mib for s in samples),
                "second_half_slope_mib_per_min": slope, "slope_stderr": error, "alive": worker.alive()}
    finally:
        if worker is not None:
            worker.stop()
        broker.stop()


def markdown(r: dict) -> str:
    rows = "\n".join(f"| {s['elapsed_s']:.0f} | {s['rss_mib']:.1f} | {s['anon_mib']:.1f} | {s['clickhouse_mib']:.1f} | "
                     f"{s['threads']} | {s['events_in']:,.0f} | {s['lag']:,.0f} |" for s in r["samples"])
    exact = "exact" if r["stored"] == r["sent"] else f"NOT exact: {r['stored']:,} stored"
    return f"""{MARK_BEGIN}
## Soak: memory under churn

`python -m bench.soak --write`, {time.strftime('%Y-%m-%d')}: {r['minutes']:g} minutes at {r['rate']:,} events/s
(500-event envelopes, event time = now), {r['models']} models, {r['distinct_nodes']:,} distinct nodes with
{r['active']:,} live at a time. Sent {r['sent']:,} events; ClickHouse holds them: {exact}.

RSS idle {r['idle_mib']:.0f} MiB, peak {r['peak_mib']:.0f} MiB. **Second half: {r['second_half_slope_mib_per_min']:+.2f}
± {r['slope_stderr']:.2f} MiB/min** (least squares over the samples; target < 1 MiB/min).

| s | RSS MiB | anonymous MiB | ClickHouse-tracked MiB | threads | events counted | lag (messages) |
|---:|---:|---:|---:|---:|---:|---:|
{rows}
{MARK_END}"""


def write(section: str, path: Path = Path(__file__).resolve().parents[1] / "BENCHMARKS.md") -> None:
    text = path.read_text()
    pattern = re.compile(re.escape(MARK_BEGIN) + ".*?" + re.escape(MARK_END), re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=3000, help="events per second")
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--nodes", type=int, default=20_000, help="distinct node names over the run")
    parser.add_argument("--active", type=int, default=2_000, help="node names live at a time")
    parser.add_argument("--write", action="store_true", help="replace the soak section of BENCHMARKS.md")
    args = parser.parse_args()
    result = run(args.minutes, args.rate, args.models, args.nodes, args.active)
    section = markdown(result)
    print(section)
    if args.write:
        write(section)
    sys.exit(0 if result["alive"] and result["stored"] == result["sent"] else 1)


if __name__ == "__main__":
    main()
