"""Recorded calls -> v1 request events -> Kafka message values.

Pure functions, no I/O, so the framing is unit-tested without a broker. An
envelope is assembled from events encoded one by one instead of calling
``encode_batch`` on the whole list: each event's size is then known, a batch is
cut before it crosses the message size cap, and the bytes are still exactly
what ``encode_batch`` produces for the same events (a unit test checks).
"""

from __future__ import annotations

import os
from typing import Iterator

import numpy as np

from fleetpulse.producers.quality import DEFAULT, Analyser
from fleetpulse.schemas import VERSION, encode_batch

#: Stay well under Kafka's default 1 MiB ``message.max.bytes`` and the
#: consumer's FLEETPULSE_MAX_MESSAGE_BYTES, and keep decode batches small.
MAX_MESSAGE_BYTES = 256 * 1024

_EMPTY = encode_batch([])
_HEAD = _EMPTY[: _EMPTY.index(b"[]") + 1]  # b'{"type":"batch","version":1,"events":['
_TAIL = _EMPTY[_EMPTY.index(b"[]") + 1:]   # b']}'

#: The tuple ``Recorder.record_request`` stores, in this order (a tuple is the
#: cheapest thing to build on the caller's thread; the dict is built later).
RECORD_FIELDS = ("timestamp", "model", "node", "duration", "ttft", "tpot", "queue_time",
                 "input_tokens", "output_tokens", "error_type", "finish_reasons",
                 "operation", "gpu", "request_id", "trace_id", "text", "expect_format", "cache_read_tokens", "tenant")

TENANT = RECORD_FIELDS.index("tenant")

_OPTIONAL = (
    (4, "gen_ai.server.time_to_first_token"),
    (5, "gen_ai.server.time_per_output_token"),
    (6, "fleetpulse.queue_time"),
    (10, "gen_ai.response.finish_reasons"),
    (9, "error.type"),
    (11, "gen_ai.operation.name"),
    (12, "gpu.id"),
    (17, "gen_ai.usage.cache_read.input_tokens"),
    (TENANT, "fleetpulse.tenant"),  # already hashed when the recorder hashes tenants
)


def event_from_record(rec: tuple, request_id: str, trace_id: str, analyser: Analyser = DEFAULT) -> dict:
    """The v1 request event for one recorded call; ids fill in those not given.

    Optional fields that are None are left out rather than sent as null: the
    schema allows both, and absent is smaller on the wire. A response text
    (``rec[15]``) becomes its quality signals (producers/quality.py) here, on
    the recorder's thread; the text itself goes nowhere.
    """
    event = {
        "type": "request",
        "version": VERSION,
        "timestamp": rec[0],
        "request.id": rec[13] or request_id,
        "trace_id": rec[14] or trace_id,
        "gen_ai.request.model": rec[1],
        "host.name": rec[2],
        "gen_ai.server.request.duration": rec[3],
        "gen_ai.usage.input_tokens": rec[7],
        "gen_ai.usage.output_tokens": rec[8],
    }
    for index, name in _OPTIONAL:
        value = rec[index]
        if value is not None:
            event[name] = value
    if rec[15] is not None:
        event.update(analyser.signals(rec[15], rec[10], rec[16]))
    return event


def hex_ids(n: int, random_bytes: bytes | None = None) -> tuple[list[str], list[str]]:
    """``n`` request ids (uuid4 hex) and ``n`` W3C trace ids (32 hex digits).

    One ``os.urandom`` call and one numpy pass for the whole batch: ``uuid.uuid4()``
    per event costs more than building the event. ``random_bytes`` (32 per id
    pair) makes the ids deterministic, which the simulator needs.
    """
    raw = os.urandom(32 * n) if random_bytes is None else random_bytes
    octets = np.frombuffer(raw, dtype=np.uint8, count=32 * n).reshape(n, 32).copy()
    octets[:, 6] = (octets[:, 6] & 0x0F) | 0x40  # uuid version 4
    octets[:, 8] = (octets[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    text = octets.tobytes().hex()
    return ([text[i:i + 32] for i in range(0, 64 * n, 64)],
            [text[i + 32:i + 64] for i in range(0, 64 * n, 64)])


def frame(encoded: list[bytes]) -> bytes:
    """The batch envelope around already-encoded events (same bytes as ``encode_batch``)."""
    return _HEAD + b",".join(encoded) + _TAIL


def envelopes(encoded: list[bytes], max_bytes: int = MAX_MESSAGE_BYTES,
              max_events: int = 500) -> Iterator[tuple[bytes, int]]:
    """Cut encoded events into envelopes of at most ``max_events`` and ``max_bytes``.

    Yields ``(message value, event count)``. An event too big to fit any
    envelope on its own still goes, alone, so nothing is silently lost; the
    consumer's size limit then routes it to the dead-letter topic.
    """
    start, size = 0, len(_HEAD) + len(_TAIL)
    for i, data in enumerate(encoded):
        grow = len(data) + (i > start)  # a comma before every event but the first
        if i > start and (i - start >= max_events or size + grow > max_bytes):
            yield frame(encoded[start:i]), i - start
            start, size, grow = i, len(_HEAD) + len(_TAIL), len(data)
        size += grow
    if start < len(encoded):
        yield frame(encoded[start:]), len(encoded) - start
