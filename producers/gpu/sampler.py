"""``gpu-sampler``: read every GPU once per interval and publish v1 GPU events.

Readings come from an :class:`~fleetpulse.producers.gpu.nvml.NvmlSource` (the
driver, or a recording). Events go to the gpu topic through the request SDK's
``Recorder``: its background thread, idempotent producer and batch envelopes,
keyed by ``host.name``, so one host's samples stay in order in one partition
and a retry never duplicates them. The sampler's own loop never waits on Kafka.

Counters (samples, null fields, delivery) are read at scrape time by a custom
collector on the registry passed in, a private one by default.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import threading
import time
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from fleetpulse.errors import ConfigError, ValidationError
from fleetpulse.producers.envelope import MAX_MESSAGE_BYTES
from fleetpulse.producers.gpu.nvml import NvmlSource, PynvmlSource
from fleetpulse.producers.gpu.recorded import RecordedNvmlSource
from fleetpulse.producers.recorder import Recorder
from fleetpulse.schemas import VERSION, validate_event
from fleetpulse.schemas.v1 import GPU
from fleetpulse.settings import Settings
from fleetpulse.topics import check_kafka

log = logging.getLogger(__name__)

PROGRESS_S = 10.0
_OPTIONAL = frozenset(f.name for f in GPU if not f.required)


class EventSink(Protocol):
    """What the sampler sends through: a ``Recorder`` in production."""

    sent: int
    failed: int
    dropped: int

    def record_batch(self, events: list[dict]) -> int: ...


def build_events(readings: list[dict], node: str, timestamp: float) -> list[dict]:
    """The v1 GPU events for one tick's readings (one timestamp for all of them)."""
    return [{"type": "gpu", "version": VERSION, "timestamp": timestamp, "host.name": node, **r} for r in readings]


class GpuSampler:
    """Samples ``source`` into ``sink`` tick by tick, counting what it sends.

    A field the schema rejects (a driver's out-of-range sentinel) is sent as
    null and counted like an unsupported one, so one odd value never costs the
    whole sample: the worker would dead-letter it.
    """

    def __init__(self, source: NvmlSource, node: str, sink: EventSink, *, registry: CollectorRegistry | None = None):
        self.source, self.node, self.sink = source, node, sink
        self.registry = CollectorRegistry() if registry is None else registry
        self.ticks = self.samples = 0
        self.nulls: dict[str, int] = {}
        self._rejected: set[tuple[str, str]] = set()
        self.registry.register(_SamplerCollector(self))

    def sample(self) -> list[dict]:
        """One tick: read every device, build and check the events, count them, hand them to the sink."""
        events = [self._checked(e) for e in build_events(self.source.read(), self.node, time.time())]
        for event in events:
            for name, value in event.items():
                if value is None:
                    self.nulls[name] = self.nulls.get(name, 0) + 1
        self.sink.record_batch(events)
        self.ticks += 1
        self.samples += len(events)
        return events

    def run(self, interval: float, count: int | None = None, stop: threading.Event | None = None) -> None:
        """Sample every ``interval`` s until ``count`` ticks are done or ``stop`` is set.

        Ticks keep to a fixed schedule; after a stall (a slow driver, a paused
        VM) the next tick is taken at once and the schedule restarts from there,
        instead of bursting to catch up.
        """
        stop = threading.Event() if stop is None else stop
        next_at = last_report = time.monotonic()
        while count is None or self.ticks < count:
            if stop.wait(max(next_at - time.monotonic(), 0)):
                break
            self.sample()
            now = time.monotonic()
            next_at = max(next_at + interval, now)
            if now - last_report >= PROGRESS_S:
                last_report = now
                log.info("gpu-sampler: %s", self.summary())

    def summary(self) -> str:
        nulls = ", ".join(f"{name}={n}" for name, n in sorted(self.nulls.items())) or "none"
        return (f"{self.ticks} ticks, {self.samples} samples sent ({self.sink.sent} acked, "
                f"{self.sink.failed + self.sink.dropped} failed); null fields: {nulls}")

    def _checked(self, event: dict) -> dict:
        while True:
            try:
                return validate_event(event, "gpu")
            except ValidationError as exc:
                if exc.field not in _OPTIONAL or event.get(exc.field) is None:
                    raise
                if (event["gpu.uuid"], exc.field) not in self._rejected:
                    self._rejected.add((event["gpu.uuid"], exc.field))
                    log.warning("GPU %s: %s; sent as null", event["gpu.uuid"], exc)
                event[exc.field] = None


class _SamplerCollector(Collector):
    """The sampler's counters, read at scrape time."""

    def __init__(self, sampler: GpuSampler):
        self._sampler = sampler

    def collect(self):
        s = self._sampler
        yield CounterMetricFamily("fleetpulse_gpu_samples", "GPU samples (one per device and tick) handed to Kafka.",
                                  value=s.samples)
        nulls = CounterMetricFamily("fleetpulse_gpu_null_fields",
                                    "Sample fields sent as null: the device could not give the value.",
                                    labels=["field"])
        for name, n in sorted(dict(s.nulls).items()):
            nulls.add_metric([name], n)
        yield nulls
        yield CounterMetricFamily("fleetpulse_gpu_sent_events", "GPU events the Kafka broker acknowledged.",
                                  value=s.sink.sent)
        yield CounterMetricFamily("fleetpulse_gpu_failed_events",
                                  "GPU events not delivered to Kafka (delivery failed, or dropped while the "
                                  "send buffer was full).", value=s.sink.failed + s.sink.dropped)


class _StopOnSignals(threading.Event):
    """SIGINT and SIGTERM end the loop between ticks, so what was sampled is
    still flushed; a second SIGINT interrupts at once."""

    def __enter__(self) -> _StopOnSignals:
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _on_signal(self, signum, frame) -> None:
        if self.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.set()


def run_gpu_sampler(settings: Settings, source: NvmlSource | None = None, interval: float = 1.0,
                    count: int | None = None, node: str | None = None) -> int:
    """Sample until ``count`` ticks, SIGINT or SIGTERM; flush; return 0.

    ``source`` defaults to the NVIDIA driver; it is closed at the end either
    way. Raises ConfigError without a driver, KafkaUnavailable when the
    broker is unreachable or samples were not delivered by the end.
    """
    if interval <= 0:
        raise ConfigError(f"--interval must be > 0 seconds, got {interval}")
    source = PynvmlSource() if source is None else source
    try:
        check_kafka(settings, timeout=10)  # one clear line now, not a stream of retries later
        node = node or socket.gethostname()
        recorder = Recorder(settings.bootstrap, settings.topic("gpu"),
                            max_message_bytes=min(MAX_MESSAGE_BYTES, settings.max_message_bytes))
        with _StopOnSignals() as stop, recorder:
            sampler = GpuSampler(source, node, recorder)
            log.info("gpu-sampler: sampling every %gs as %s to %s", interval, node, settings.topic("gpu"))
            sampler.run(interval, count, stop)
        log.info("gpu-sampler: stopped, %s", sampler.summary())
    finally:
        source.close()
    return 0


def run(settings: Settings, args: argparse.Namespace) -> int:
    """``fleetpulse gpu-sampler``, with the arguments fleetpulse.cli parsed."""
    source = RecordedNvmlSource(args.recorded) if args.recorded else None
    return run_gpu_sampler(settings, source, args.interval, args.count, args.node)


def main(argv: list[str] | None = None) -> int:
    """``python -m fleetpulse.producers.gpu``: ``fleetpulse gpu-sampler``, the
    same parser and the same contract (one ``fleetpulse: error:`` line, exit 1)."""
    from fleetpulse.cli import main as cli_main  # cli imports this module lazily too

    return cli_main(["gpu-sampler", *(sys.argv[1:] if argv is None else argv)])
