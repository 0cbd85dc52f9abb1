"""Build ClickHouse rows from partial aggregates and raw events (pure)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import NamedTuple

import numpy as np

from fleetpulse.streams.windows import native
from fleetpulse.streams.windows.aggregate import CATEGORIES, HISTOGRAMS, QUALITY, WindowBlock

WINDOW_COLUMNS = (
    "window_start", "window_seconds", "model", "node", "gpu", "late", "requests", "errors", "errors_by_type",
    "input_tokens", "output_tokens", "latency_sum", "latency_buckets", "ttft_buckets", "tpot_buckets",
    "input_tokens_buckets", "output_tokens_buckets", "queue_buckets", "operations", "finish_reasons", "outcomes",
    "source_topic", "source_partition", "offset_first", "offset_last", "max_event_time",
    # sql/014_quality.sql
    "analysed", "refusals", "empty_outputs", "format_checked", "format_failures", "cache_read_tokens",
    "repetition_buckets",
)

EVENT_COLUMNS = (
    "timestamp", "request_id", "trace_id", "model", "node", "gpu", "operation", "duration",
    "ttft", "tpot", "queue_time", "input_tokens", "output_tokens", "finish_reasons",
    "error_type", "source_topic", "source_partition", "source_offset", "event_index",
)


#: Day partitions one INSERT into request_events may touch. The table is
#: PARTITION BY toYYYYMMDD(timestamp), and ClickHouse refuses a block over
#: max_partitions_per_insert_block (100 by default; no retry helps), while one
#: valid envelope may hold events of any number of days: a batch over this is
#: written in pieces. Half the default leaves room for a server set lower, and
#: for a timestamp half a microsecond before midnight, which its row rounds
#: into the next day.
DAYS_PER_INSERT = 50


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


class EventRun(NamedTuple):
    """Event rows [lo, hi) of a batch, written by one INSERT. ``days`` names the
    UTC days they span (``20250101-20250219``), "" when the batch needs one INSERT."""

    lo: int
    hi: int
    days: str


def day_runs(timestamps: np.ndarray, limit: int = DAYS_PER_INSERT) -> tuple[np.ndarray | None, list[EventRun]]:
    """The order to write events in, and runs of it that each span at most
    ``limit`` UTC days. A batch of fewer days (the usual one) keeps its order
    (None) in one run; otherwise events are ordered by day (stable) and cut
    every ``limit`` distinct days. Whole arrays: Python runs per run."""
    days = (timestamps // 86400).astype(np.int64)
    distinct = np.unique(days)
    if len(distinct) <= limit:
        return None, [EventRun(0, len(days), "")]
    order = np.argsort(days, kind="stable")
    by_day = days[order]
    firsts = distinct[::limit]
    starts = np.searchsorted(by_day, firsts)
    ends = np.append(starts[1:], len(by_day))
    return order, [EventRun(lo, hi, f"{_yyyymmdd(first)}-{_yyyymmdd(last)}") for lo, hi, first, last
                   in zip(starts.tolist(), ends.tolist(), firsts.tolist(), by_day[ends - 1].tolist())]


def _yyyymmdd(day: int) -> str:
    return datetime.fromtimestamp(day * 86400, tz=timezone.utc).strftime("%Y%m%d")


def window_rows(block: WindowBlock, window_seconds: int, spans: list[SourceSpan]) -> list[list]:
    """The rows as Python lists in WINDOW_COLUMNS order (Python per row: for
    reading and tests; the worker writes :func:`window_block`)."""
    return [
        [
            datetime.fromtimestamp(p.window_start, tz=timezone.utc), window_seconds, p.model, p.node, p.gpu,
            int(p.late), p.requests, p.errors, p.errors_by_type, p.input_tokens, p.output_tokens,
            p.latency_sum, p.latency_buckets, p.ttft_buckets, p.tpot_buckets, p.input_tokens_buckets,
            p.output_tokens_buckets, p.queue_buckets, p.operations, p.finish_reasons, p.outcomes, *spans[p.source],
            p.analysed, p.refusals, p.empty_outputs, p.format_checked, p.format_failures, p.cache_read_tokens,
            p.repetition_buckets,
        ]
        for p in block.partials()
    ]


def window_block(block: WindowBlock, window_seconds: int, spans: list[SourceSpan]) -> bytes:
    """The rows as one ClickHouse Native block with the WINDOW_COLUMNS, built from arrays."""
    n = len(block)
    data = {
        "window_start": ("DateTime", native.numbers(block.window_start, "<u4")),
        "window_seconds": ("UInt32", native.numbers(np.full(n, window_seconds), "<u4")),
        "model": ("String", native.strings(block.model.values, block.model.codes)),
        "node": ("String", native.strings(block.node.values, block.node.codes)),
        "gpu": ("String", native.strings(block.gpu.values, block.gpu.codes)),
        "late": ("UInt8", native.numbers(block.late, "<u1")),
        "requests": ("UInt64", native.numbers(block.requests, "<u8")),
        "errors": ("UInt64", native.numbers(block.errors, "<u8")),
        "input_tokens": ("UInt64", native.numbers(block.input_tokens, "<u8")),
        "output_tokens": ("UInt64", native.numbers(block.output_tokens, "<u8")),
        "latency_sum": ("Float64", native.numbers(block.latency_sum, "<f8")),
        **source_columns(block.source, spans),
    }
    data.update({name: ("Map(Int16, UInt64)", native.int16_map(block.maps[name])) for name in HISTOGRAMS})
    data.update({name: ("UInt64", native.numbers(block.quality[name], "<u8")) for name in QUALITY})
    data.update({name: ("Map(String, UInt64)", native.string_map(block.maps[name])) for name in CATEGORIES})
    return native.block([(name, *data[name]) for name in WINDOW_COLUMNS], n)


def source_columns(src: np.ndarray, spans: list[SourceSpan]) -> dict[str, tuple[str, bytes]]:
    """The exactly-once bookkeeping columns of rows whose source partition is
    ``spans[src[i]]``, as Native columns (request_windows, tenant_windows)."""
    n = len(src)
    topics = sorted({s.topic for s in spans})

    def of(values: list, dtype) -> np.ndarray:
        return np.array(values, dtype=dtype)[src] if n else src

    return {
        "source_topic": ("String", native.strings(topics, of([topics.index(s.topic) for s in spans], np.int64))),
        "source_partition": ("UInt32", native.numbers(of([s.partition for s in spans], np.int64), "<u4")),
        "offset_first": ("UInt64", native.numbers(of([s.offset_first for s in spans], np.int64), "<u8")),
        "offset_last": ("UInt64", native.numbers(of([s.offset_last for s in spans], np.int64), "<u8")),
        "max_event_time": ("Float64", native.numbers(of([s.max_event_time for s in spans], np.float64), "<f8")),
    }


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
