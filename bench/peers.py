"""Peer systems doing the fleetpulse worker's job, on the same topic, against a real broker.

The job, the same for every peer: consume the requests topic from the beginning
and, per 10 s event-time tumbling window, model and node, keep count, errors,
input/output token sums and a log latency histogram of
``gen_ai.server.request.duration``. Peers (each its own process, one at a time):

- Quix Streams 3.x, ``group_by`` + ``tumbling_window(...).reduce(...).current()``
  (``bench/peer_quix.py``), in its own virtualenv made on demand under
  ``~/.cache/fleetpulse/peers-venv`` (Quix pins its own confluent-kafka);
- faust (fleetpulse's own faust-streaming) with a windowed table updated per event
  (``bench/peer_faust.py --mode table``);
- faust, a plain agent over ``stream.take(1000, within=1)`` batches aggregating
  into a dict (``--mode take``).

Each peer times itself from the first event it sees to the last one it processed,
with its process CPU (all threads) over that span, and reports its totals over
all windows; ``run_peers`` asserts them equal to the topic's own totals.

Standalone: ``python -m bench.peers --events 100000`` starts a broker, fills a
topic with single-event messages and one with 500-event envelopes (the same
events), and prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

QUIX_VERSION = "3.28.1"
QUIX_SYSTEM = f"Quix Streams {QUIX_VERSION} tumbling_window"
FAUST_TABLE_SYSTEM = "faust windowed table"
FAUST_TAKE_SYSTEM = "faust take(1000)"
SYSTEMS = (QUIX_SYSTEM, FAUST_TABLE_SYSTEM, FAUST_TAKE_SYSTEM)

BENCH_DIR = Path(__file__).resolve().parent
PEERS_VENV = Path(os.environ.get("FLEETPULSE_PEERS_VENV", "~/.cache/fleetpulse/peers-venv")).expanduser()
_MARK = "PEER-RESULT "  # what starts a peer's result, JSON after it
_TOTALS = ("count", "errors", "input_tokens", "output_tokens")


@dataclasses.dataclass
class PeerResult:
    system: str            # e.g. "Quix Streams 3.x tumbling_window", "faust windowed table", "faust take(1000)"
    form: str              # "single" or "envelope"
    events: int
    seconds: float         # wall time from first message to last event processed
    cpu_seconds: float     # CPU of the peer process over the same span (user+sys)
    process_cpu_seconds: float = 0.0  # CPU of the whole peer process, start-up and shut-down included
    totals: dict = dataclasses.field(default_factory=dict)  # what the peer counted over all windows

    @property
    def events_per_s(self) -> float:
        return self.events / max(self.seconds, 1e-9)

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_seconds * 1e6 / max(self.events, 1)


class PeerError(RuntimeError):
    """A peer failed, timed out, or counted wrong."""


# -- the Quix virtualenv ------------------------------------------------------

def ensure_quix_venv(venv: Path = PEERS_VENV) -> Path:
    """The python of a virtualenv with Quix Streams installed; made once per machine."""
    python = venv / "bin" / "python"
    marker = venv / f"quixstreams-{QUIX_VERSION}.installed"
    if marker.exists():
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / "peers-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists():
            print(f"bench.peers: installing quixstreams=={QUIX_VERSION} into {venv} (once; about a minute)",
                  file=sys.stderr, flush=True)
            if not python.exists():
                _check([sys.executable, "-m", "venv", str(venv)], "creating the peers virtualenv")
            _check([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    f"quixstreams=={QUIX_VERSION}", "orjson"], f"installing quixstreams=={QUIX_VERSION}")
            marker.write_text(f"quixstreams=={QUIX_VERSION}\n")
    return python


def _check(cmd: list[str], what: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise PeerError(f"{what} failed ({done.returncode}): {(done.stderr or done.stdout)[-2000:]}")


# -- the topic's own totals ---------------------------------------------------

def topic_partitions(bootstrap: str, topic: str) -> int:
    meta = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=15)
    info = meta.topics.get(topic)
    if info is None or info.error is not None or not info.partitions:
        raise PeerError(f"topic {topic} not found on {bootstrap}")
    return len(info.partitions)


def input_totals(bootstrap: str, topic: str, expected_events: int, timeout_s: float = 120) -> dict:
    """Count, errors and token sums of the first ``expected_events`` events of ``topic``."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"peers-totals-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    totals = dict.fromkeys(_TOTALS, 0)
    deadline = time.monotonic() + timeout_s
    try:
        while totals["count"] < expected_events:
            if time.monotonic() > deadline:
                raise PeerError(f"{topic}: only {totals['count']} of {expected_events} events within {timeout_s:g} s")
            for msg in consumer.consume(1000, timeout=1):
                if msg.error():
                    continue
                value = orjson.loads(msg.value())
                for ev in value["events"] if value.get("type") == "batch" else (value,):
                    totals["count"] += 1
                    totals["errors"] += ev.get("error.type") is not None
                    totals["input_tokens"] += ev.get("gen_ai.usage.input_tokens") or 0
                    totals["output_tokens"] += ev.get("gen_ai.usage.output_tokens") or 0
    finally:
        consumer.close()
    if totals["count"] != expected_events:
        raise PeerError(f"{topic} holds {totals['count']} events, not the {expected_events} expected")
    return totals


# -- running the peers --------------------------------------------------------

def _run_one(system: str, form: str, cmd: list[str], expected_events: int, timeout_s: float,
             log_dir: Path) -> PeerResult:
    log = log_dir / f"{system.split()[0].lower()}-{form}-{uuid.uuid4().hex[:6]}.log"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log, "w") as stderr:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=BENCH_DIR.parent,
                                start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise PeerError(f"{system} ({form}) did not finish {expected_events} events within {timeout_s:g} s; "
                            f"log: {log}\n{_tail(log)}") from None
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # Not just a line's start: faust's worker draws a spinner's escape codes on stdout.
    lines = [line.split(_MARK, 1)[1] for line in out.splitlines() if _MARK in line]
    if not lines:
        raise PeerError(f"{system} ({form}) exited {proc.returncode} without a result; log: {log}\n{_tail(log)}")
    report = orjson.loads(lines[-1])
    return PeerResult(system, form, report["events"], report["seconds"], report["cpu_seconds"],
                      process_cpu_seconds=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
                      totals=report["totals"])


def _tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def run_peers(bootstrap: str, topic: str, form: str, expected_events: int, timeout_s: float = 600,
              systems: tuple[str, ...] = SYSTEMS, expected: dict | None = None) -> list[PeerResult]:
    """Run every peer on the already-filled `topic` (each with its own consumer group) and return their results.

    ``timeout_s`` bounds each peer. ``expected`` (count, errors, input_tokens,
    output_tokens) is the topic's totals; read from the topic when not given.
    Raises :class:`PeerError` when a peer fails, times out or counts wrong.
    """
    if form not in ("single", "envelope"):
        raise ValueError(f"form must be 'single' or 'envelope', not {form!r}")
    expected = expected or input_totals(bootstrap, topic, expected_events)
    partitions = topic_partitions(bootstrap, topic)
    work = Path(tempfile.mkdtemp(prefix="fleetpulse-peers-"))
    common = ["--bootstrap", bootstrap, "--topic", topic, "--expected", str(expected_events)]
    results = []
    try:
        for system in systems:
            group = ["--group", f"peer-{system.split()[0].lower()}-{uuid.uuid4().hex[:8]}"]
            if system == QUIX_SYSTEM:
                state = work / f"quix-state-{form}"
                cmd = [str(ensure_quix_venv()), str(BENCH_DIR / "peer_quix.py"), *common, *group,
                       "--form", form, "--state-dir", str(state)]
            elif system in (FAUST_TABLE_SYSTEM, FAUST_TAKE_SYSTEM):
                mode = "table" if system == FAUST_TABLE_SYSTEM else "take"
                cmd = [sys.executable, str(BENCH_DIR / "peer_faust.py"), *common, *group,
                       "--partitions", str(partitions), "--mode", mode]
            else:
                raise ValueError(f"unknown peer system {system!r}; known: {SYSTEMS}")
            result = _run_one(system, form, cmd, expected_events, timeout_s, work)
            wrong = {k: (result.totals.get(k), expected[k]) for k in _TOTALS if result.totals.get(k) != expected[k]}
            if result.totals.get("hist") != expected["count"]:
                wrong["hist"] = (result.totals.get("hist"), expected["count"])
            if wrong:
                raise PeerError(f"{system} ({form}) counted wrong (got, want): {wrong}")
            results.append(result)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


# -- standalone ----------------------------------------------------------------

def markdown(results: list[PeerResult], ceilings: dict[str, float] | None = None) -> str:
    lines = ["| system | form | events | seconds | events/s | CPU µs/event | process CPU s |",
             "|---|---|---|---|---|---|---|"]
    for form, value in (ceilings or {}).items():
        lines.append(f"| ceiling: consume + orjson | {form} | | | {value:,.0f} | | |")
    for r in results:
        lines.append(f"| {r.system} | {r.form} | {r.events:,} | {r.seconds:.2f} | {r.events_per_s:,.0f} "
                     f"| {r.cpu_us_per_event:.1f} | {r.process_cpu_seconds:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    from bench.bench_pipeline import _dataset, _events, ceiling
    from fleetpulse.localkafka import LocalKafka, free_port
    from fleetpulse.settings import load_settings

    parser = argparse.ArgumentParser(description="Quix Streams and plain faust doing fleetpulse's job")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--envelope", type=int, default=500, help="events per envelope")
    parser.add_argument("--forms", default="single,envelope")
    parser.add_argument("--systems", default=",".join(SYSTEMS),
                        help=f"comma-separated, of: {', '.join(SYSTEMS)}")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per peer")
    args = parser.parse_args(argv)
    forms = [f for f in args.forms.split(",") if f]
    systems = tuple(s.strip() for s in args.systems.split(",") if s.strip())

    started = time.perf_counter()
    if QUIX_SYSTEM in systems:
        ensure_quix_venv()
    tmp = Path(tempfile.mkdtemp(prefix="fleetpulse-peers-"))
    base = load_settings(environ={}, home=tmp, kafka_port=free_port())
    broker = LocalKafka(base)
    broker.start()
    base = dataclasses.replace(base, kafka_bootstrap=base.bootstrap)
    results, ceilings = [], {}
    try:
        events = _events(args.events, seed=1)
        for form in forms:
            settings = _dataset(base, tmp, events, envelope=args.envelope if form == "envelope" else None)
            topic = settings.topic("requests")
            ceilings[form] = ceiling(settings, len(events))
            for result in run_peers(settings.bootstrap, topic, form, len(events), args.timeout, systems):
                print(f"{result.system} ({form}): {result.events_per_s:,.0f} events/s, "
                      f"{result.cpu_us_per_event:.1f} CPU µs/event", file=sys.stderr, flush=True)
                results.append(result)
    finally:
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(markdown(results, ceilings))
    print(f"{args.events:,} events per form; envelopes of {args.envelope}; "
          f"run took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
