"""Build ClickHouse rows from partial aggregates and raw events (pure)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import NamedTuple

from fleetpulse.streams.aggregate import Partial

WINDOW_COLUMNS = (
    "window_start", "window_seconds", "model", "node", "gpu", "late", "requests", "errors", "errors_by_type",
    "input_tokens", "output_tokens", "latency_sum", "latency_buckets", "ttft_buckets", "tpot_buckets",
    "input_tokens_buckets", "output_tokens_buckets", "queue_buckets", "operations", "finish_reasons", "outcomes",
    "source_topic", "source_partition", "offset_first", "offset_last", "max_event_time",
)

EVENT_COLUMNS = (
    "timestamp", "request_id", "trace_id", "model", "node", "gpu", "operation", "duration",
    "ttft", "tpot", "queue_time", "input_tokens", "output_tokens", "finish_reasons",
    "error_type", "source_topic", "source_partition", "source_offset", "event_index",
)


class SourceSpan(NamedTuple):
    """The offsets of one partition in a batch, and its event-time high-water mark after it."""

    topic: str
    partition: int
    offset_first: int
    offset_last: int
    max_event_time: float


class EventSource(NamedTuple):
    topic: str
    partition: int
    offset: int
    index: int  # position of the event inside its message


def window_rows(partials: list[Partial], window_seconds: int, spans: list[SourceSpan]) -> list[list]:
    return [
        [
            datetime.fromtimestamp(p.window_start, tz=timezone.utc), window_seconds, p.model, p.node, p.gpu,
            int(p.late), p.requests, p.errors, p.errors_by_type, p.input_tokens, p.output_tokens,
            p.latency_sum, p.latency_buckets, p.ttft_buckets, p.tpot_buckets, p.input_tokens_buckets,
            p.output_tokens_buckets, p.queue_buckets, p.operations, p.finish_reasons, p.outcomes, *spans[p.source],
        ]
        for p in partials
    ]


def event_rows(events: list, origins: list[EventSource]) -> list[list]:
    """Rows of request_events from decoded events (schemas.fast.RequestEvent).
    Per event, but only when FLEETPULSE_STORE_RAW_EVENTS is on."""
    return [
        [
            datetime.fromtimestamp(e.timestamp, tz=timezone.utc), e.request_id, e.trace_id, e.model, e.node,
            e.gpu or "", e.operation or "", e.duration, e.ttft, e.tpot, e.queue_time, e.input_tokens,
            e.output_tokens, list(e.finish_reasons or ()), e.error_type or "", *origin,
        ]
        for e, origin in zip(events, origins)
    ]
