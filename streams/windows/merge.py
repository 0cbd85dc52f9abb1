"""Consecutive batches of one topic as one write (pure).

The worker decodes a handover in runs of FLEETPULSE_BATCH_MAX_BYTES, which
bound the decoding memory, and writes the runs' window rows (a few per
series, not per event) in one INSERT: chDB's cost per insert is mostly
fixed, ~50-65 ms with the two rollup views for a few hundred rows here.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from fleetpulse.streams.windows.aggregate import WindowBlock
from fleetpulse.streams.windows.batch import BatchResult, TopicPartition, source_of
from fleetpulse.streams.windows.rows import SourceSpan
from fleetpulse.streams.windows.tenants import TenantBlock
from fleetpulse.streams.windows.watermark import PartitionProgress


def merge_results(parts: Sequence[BatchResult]) -> BatchResult:
    """Consecutive batches of one topic, each processed from the progress the
    one before leaves, as one batch: one INSERT (and its materialized views)
    instead of one per part. Every row carries its partition's span of the whole
    batch, as it would had the batch been processed in one piece: the insert
    lands whole or not at all. Not for raw events (their inserts are cut by
    day, with tokens per cut)."""
    if len(parts) == 1:
        return parts[0]
    if any(p.event_rows for p in parts):
        raise ValueError("batches with raw events are written one by one")
    merged: dict[TopicPartition, SourceSpan] = {}
    for part in parts:
        for span in part.spans:
            was = merged.get((span.topic, span.partition))
            merged[(span.topic, span.partition)] = span if was is None else SourceSpan(
                span.topic, span.partition, min(was.offset_first, span.offset_first),
                max(was.offset_last, span.offset_last), max(was.max_event_time, span.max_event_time))
    tps = sorted(merged)
    index = {tp: i for i, tp in enumerate(tps)}
    sources = [np.array([index[(s.topic, s.partition)] for s in part.spans], dtype=np.int64) for part in parts]
    tenants = [p.tenants for p in parts if p.tenants is not None]
    progress: dict[TopicPartition, PartitionProgress] = {}
    for part in parts:
        progress.update(part.progress)
    return BatchResult(
        source=source_of({tp: (merged[tp].offset_first, merged[tp].offset_last) for tp in tps}),
        messages=sum(p.messages for p in parts), skipped=sum(p.skipped for p in parts),
        events=sum(p.events for p in parts), late_events=sum(p.late_events for p in parts),
        windows=WindowBlock.concat([p.windows for p in parts], sources), spans=[merged[tp] for tp in tps],
        window_seconds=parts[0].window_seconds, event_rows=[], event_runs=[],
        dead=[d for p in parts for d in p.dead], progress=progress, columns=[c for p in parts for c in p.columns],
        slow_messages=sum(p.slow_messages for p in parts),
        tenants=TenantBlock.concat(tenants, [src for p, src in zip(parts, sources) if p.tenants is not None])
        if tenants else None)
