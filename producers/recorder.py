"""``Recorder``: the SDK an inference server embeds to publish request events.

The caller's thread only appends a tuple to a bounded deque (well under 5 µs;
``bench/bench_recorder.py`` measures it). It never blocks, never does I/O and
never raises on a full buffer: a recorder must not slow down or break the
server it observes. When the buffer is full the event is dropped and counted.

One background thread turns tuples into v1 events, groups them by node (the
Kafka key, so a node's events stay ordered in one partition), packs them into
batch envelopes under the size cap and hands them to an idempotent producer.
Only that thread touches the producer, so the delivery counters have one
writer, and ``flush``/``close`` are markers queued behind the events they cover.

Metrics are exposed by a custom collector on the registry you pass (never the
global one by default), read at scrape time: nothing on the hot path.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from functools import partial

import orjson
from confluent_kafka import KafkaException, Producer
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from fleetpulse.errors import ConfigError, FleetpulseError, KafkaUnavailable
from fleetpulse.producers.envelope import MAX_MESSAGE_BYTES, envelopes, event_from_record, hex_ids
from fleetpulse.producers.quality import FORMATS, REFUSAL_PHRASES, Analyser
from fleetpulse.producers.tenant import TenantHasher
from fleetpulse.producers.timer import RequestTimer
from fleetpulse.settings import Settings

log = logging.getLogger(__name__)
_librdkafka_log = logging.getLogger("fleetpulse.librdkafka")
# An embedding server that configures no logging must not get librdkafka's
# connection chatter on stderr; with logging configured, it propagates as usual.
_librdkafka_log.addHandler(logging.NullHandler())
_now = time.time

_PRODUCER_DEFAULTS = {
    "enable.idempotence": True,  # retries never duplicate or reorder a node's events
    "acks": "all",
    "compression.type": "lz4",
    # librdkafka's own queue defaults to 1 GiB; with a broker down that is where
    # memory would go. Past this, the recorder's bounded deque fills and drops.
    "queue.buffering.max.kbytes": 65536,
}
_HINT = "check FLEETPULSE_KAFKA_BOOTSTRAP, that the broker is up (`fleetpulse kafka start`) and the topic exists"
_GRACE_S = 2.0  # how much longer than its timeout a flush/close may wait for the thread


class _Marker:
    """A flush or close request, queued behind the events it covers."""

    __slots__ = ("deadline", "stop", "done", "in_flight", "failed", "last_error")

    def __init__(self, timeout: float, stop: bool):
        self.deadline = time.monotonic() + timeout
        self.stop = stop
        self.done = threading.Event()


class Recorder:
    """Publish one v1 request event per inference request; see the module docstring.

    Its counters go on ``registry`` (one recorder per registry; default a
    private one, read it as ``recorder.registry``). ``producer_config`` entries
    override the producer defaults. ``single_events`` sends one event per Kafka
    message, as a non-Python client would, instead of batch envelopes.
    ``refusal_phrases`` replaces the phrases that mark a refused response.
    """

    def __init__(self, bootstrap: str, topic: str, *, max_buffer: int = 100_000, batch_events: int = 500,
                 linger_s: float = 0.05, max_message_bytes: int = MAX_MESSAGE_BYTES,
                 single_events: bool = False, producer_config: dict | None = None,
                 registry: CollectorRegistry | None = None, refusal_phrases=REFUSAL_PHRASES,
                 hash_tenants: bool = False, tenant_salt: bytes = b""):
        self.bootstrap = bootstrap
        self.topic = topic
        self.registry = CollectorRegistry() if registry is None else registry
        self._buffer: deque = deque()
        self._max_buffer = max_buffer
        self._batch_events = batch_events
        self._linger_s = linger_s
        self._max_message_bytes = max_message_bytes
        self._single_events = single_events
        self._analyser = Analyser(refusal_phrases)
        # Tenants are hashed on the recorder's thread, never the caller's.
        self._tenant = TenantHasher(tenant_salt) if hash_tenants else None
        self._dropped = self._sent = self._failed = self._in_flight = self._reported_failed = 0
        self._drop_lock = threading.Lock()
        self._last_error: str | None = None  # the broker's or producer's latest complaint
        self._give_up_at = float("inf")
        self._closed = False
        self._wake = threading.Event()
        config = {"bootstrap.servers": bootstrap, **_PRODUCER_DEFAULTS, **(producer_config or {}),
                  "error_cb": self._on_error}
        try:
            self._producer = Producer(config, logger=_librdkafka_log)
        except KafkaException as exc:
            raise ConfigError(f"Kafka producer config rejected: {exc.args[0].str()}") from exc
        self.registry.register(_RecorderCollector(self))
        self._thread = threading.Thread(target=self._run, name="fleetpulse-recorder", daemon=True)
        self._thread.start()

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs) -> Recorder:
        """A recorder for the settings' requests topic, within the consumer's message size limit."""
        kwargs.setdefault("max_message_bytes", min(MAX_MESSAGE_BYTES, settings.max_message_bytes))
        return cls(settings.bootstrap, settings.topic("requests"), **kwargs)

    # -- the caller's side ---------------------------------------------------

    def record_request(self, model: str, node: str, duration: float, *, ttft: float | None = None,
                       tpot: float | None = None, queue_time: float | None = None, input_tokens: int = 0,
                       output_tokens: int = 0, error_type: str | None = None,
                       finish_reasons: list[str] | None = None, operation: str | None = None,
                       gpu: str | None = None, request_id: str | None = None, trace_id: str | None = None,
                       timestamp: float | None = None, text: str | None = None,
                       expect_format: str | None = None, cache_read_tokens: int | None = None,
                       tenant: str | None = None) -> bool:
        """Queue one finished request (seconds; ``timestamp`` defaults to now). False if dropped.

        ``text``, the response, is only carried to the background thread, which
        derives its quality signals (``expect_format="json"``: does it parse?)
        and drops it: the text is never sent (producers/quality.py). ``tenant`` is sent as
        given, or as its keyed hash with ``hash_tenants=True``."""
        buffer = self._buffer
        if len(buffer) >= self._max_buffer:
            self._drop(1)
            return False
        if expect_format is not None and expect_format.lower() not in FORMATS:
            raise ValueError(f"expect_format {expect_format!r}: not one of {FORMATS}")
        buffer.append((timestamp or _now(), model, node, duration, ttft, tpot, queue_time, input_tokens,
                       output_tokens, error_type, finish_reasons, operation, gpu, request_id, trace_id, text,
                       expect_format, cache_read_tokens, tenant))
        return True

    def time_request(self, model: str, node: str, **fields) -> RequestTimer:
        """``with r.time_request(model, node) as req:`` times the block and records it on exit."""
        return RequestTimer(self, model, node, **fields)

    def record_batch(self, events: list[dict], *, block: bool = False) -> int:
        """Queue ready-made v1 event dicts (not validated here); return how many were taken.

        With ``block=True`` it waits for buffer space instead of dropping, which
        is what a load generator that must know exactly what it sent wants.
        """
        taken = 0
        while taken < len(events) and not self._closed:
            room = self._max_buffer - len(self._buffer)
            if room > 0:
                part = events[taken:taken + room]
                self._buffer.extend(part)
                taken += len(part)
            elif block:
                self._wake.set()
                time.sleep(0.001)
            else:
                break
        if taken < len(events):
            self._drop(len(events) - taken)
        return taken

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until everything recorded so far is delivered; raise KafkaUnavailable if not."""
        if self._closed:
            raise FleetpulseError("flush() on a closed Recorder")
        self._check(self._request(_Marker(timeout, stop=False)), timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is buffered, stop the thread; raise KafkaUnavailable if events were lost."""
        if self._closed:
            return
        self._closed = True
        self._max_buffer = 0  # from now on record_request drops (and counts) instead of queueing
        self._give_up_at = time.monotonic() + timeout
        marker = self._request(_Marker(timeout, stop=True))
        self._thread.join(timeout + _GRACE_S)
        if not self._thread.is_alive():  # what racing threads recorded behind the close marker
            self._drop(len(self._buffer))
            self._buffer.clear()
        self._check(marker, timeout)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # never hide the caller's exception behind a delivery error
            self.close()
        except KafkaUnavailable as close_error:
            log.error("%s", close_error)

    @property
    def dropped(self) -> int:
        """Events dropped because the buffer was full (or recorded after close)."""
        return self._dropped

    @property
    def sent(self) -> int:
        """Events the broker acknowledged."""
        return self._sent

    @property
    def failed(self) -> int:
        """Events that reached the producer but were not delivered (or could not be encoded)."""
        return self._failed

    def _drop(self, n: int) -> None:
        if n:
            with self._drop_lock:
                self._dropped += n

    def _request(self, marker: _Marker) -> _Marker:
        self._buffer.append(marker)  # markers bypass the size cap
        self._wake.set()
        return marker

    def _check(self, marker: _Marker, timeout: float) -> None:
        if not marker.done.wait(max(marker.deadline - time.monotonic(), 0) + _GRACE_S):
            why = self._last_error or "the recorder thread is still handing events to the producer"
            raise KafkaUnavailable(f"Kafka at {self.bootstrap}: events for {self.topic} not handed over within "
                                   f"{timeout:g}s ({why}); {_HINT}")
        new_failures = marker.failed - self._reported_failed
        self._reported_failed = marker.failed
        if marker.in_flight or new_failures:
            raise KafkaUnavailable(f"Kafka at {self.bootstrap}: {marker.in_flight + new_failures} events for "
                                   f"{self.topic} not delivered within {timeout:g}s ({marker.last_error}); {_HINT}")

    # -- the background thread -----------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                if len(self._buffer) < self._batch_events:
                    self._wake.wait(self._linger_s)
                    self._wake.clear()
                if self._drain():
                    return
                self._producer.poll(0)
        except Exception:  # a bug here must not pass silently; flush/close then time out loudly
            log.exception("fleetpulse recorder thread crashed")
            raise

    def _drain(self) -> bool:
        """Send what is queued now, in order; settle markers on the way. True on the close marker."""
        buffer, items = self._buffer, []
        for _ in range(len(buffer)):
            item = buffer.popleft()
            if type(item) is _Marker:
                self._send(items)
                items = []
                if self._settle(item):
                    return True
                continue
            items.append(item)
            if len(items) >= self._batch_events * 4:
                self._send(items)
                items = []
                self._producer.poll(0)  # delivery reports, and lets the caller's threads have the GIL
        self._send(items)
        return False

    def _send(self, items: list) -> None:
        if not items:
            return
        request_ids, trace_ids = hex_ids(len(items))
        if self._tenant is not None:
            items = self._tenant.records(items)
        by_node: dict[str, list[bytes]] = {}
        for item, request_id, trace_id in zip(items, request_ids, trace_ids):
            event = item if type(item) is dict else event_from_record(item, request_id, trace_id, self._analyser)
            try:
                data = orjson.dumps(event, option=orjson.OPT_SERIALIZE_NUMPY)
            except orjson.JSONEncodeError as exc:
                self._fail(1, f"event not encodable as JSON: {exc}")
                continue
            by_node.setdefault(event.get("host.name"), []).append(data)
        for node, encoded in by_node.items():
            key = str(node).encode()
            if self._single_events:
                for data in encoded:
                    self._produce(data, key, 1)
            else:
                for value, n in envelopes(encoded, self._max_message_bytes, self._batch_events):
                    self._produce(value, key, n)

    def _produce(self, value: bytes, key: bytes, n: int) -> None:
        while True:
            try:
                self._producer.produce(self.topic, value, key, on_delivery=partial(self._on_delivery, n))
                self._in_flight += n
                return
            except BufferError:  # librdkafka's queue is full: the broker is slow or down
                if time.monotonic() >= self._give_up_at:
                    self._fail(n, "producer queue full")
                    return
                self._producer.poll(0.05)
            except KafkaException as exc:
                self._fail(n, exc.args[0].str())
                return

    def _settle(self, marker: _Marker) -> bool:
        self._producer.flush(max(marker.deadline - time.monotonic(), 0))
        marker.last_error = self._explain_undelivered() if self._in_flight else self._last_error
        if marker.stop and self._in_flight:
            self._producer.purge()  # undeliverable before the deadline: report them as failed
            self._producer.flush(0)
        marker.in_flight, marker.failed = self._in_flight, self._failed
        marker.done.set()
        return marker.stop

    def _explain_undelivered(self) -> str:
        """Why events are stuck: the last error seen or, if none, a missing topic
        (librdkafka only fails those after topic.metadata.propagation.max.ms)."""
        if self._last_error is not None:
            return self._last_error
        try:
            topic = self._producer.list_topics(self.topic, timeout=1.0).topics.get(self.topic)
        except KafkaException as exc:
            return exc.args[0].str()
        if topic is not None and topic.error is not None:
            return f"topic {self.topic}: {topic.error.str()}"
        return "no delivery report from the broker"

    def _on_delivery(self, n: int, err, msg) -> None:
        self._in_flight -= n
        if err is None:
            self._sent += n
            self._last_error = None  # the broker is fine again: an old error explains nothing
        else:
            self._fail(n, err.str())

    def _on_error(self, err) -> None:
        self._last_error = err.str()
        if err.fatal():
            log.error("Kafka producer for %s: fatal error: %s", self.bootstrap, err.str())

    def _fail(self, n: int, why: str) -> None:
        self._failed += n
        self._last_error = why


class _RecorderCollector(Collector):
    """The recorder's counters, read at scrape time."""

    def __init__(self, recorder: Recorder):
        self._recorder = recorder

    def collect(self):
        r = self._recorder
        yield CounterMetricFamily("fleetpulse_recorder_dropped_events",
                                  "Request events dropped because the recorder buffer was full.", value=r.dropped)
        yield CounterMetricFamily("fleetpulse_recorder_sent_events",
                                  "Request events the Kafka broker acknowledged.", value=r.sent)
        yield CounterMetricFamily("fleetpulse_recorder_failed_events",
                                  "Request events that could not be delivered to Kafka.", value=r.failed)

