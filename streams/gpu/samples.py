"""GPU samples: decode a batch from the gpu topic into rows and dead letters (pure).

Samples are stored as they come (one per GPU per second); the windows are
computed from them (streams/gpu/windows.py). The table is keyed by (node, GPU,
time), so a sample consumed twice collapses: no offset bookkeeping is needed.
"""

from __future__ import annotations

from datetime import datetime, timezone

from fleetpulse.schemas import GPU
from fleetpulse.streams.windows.batch import RawMessage, Retention, SourcedDeadLetter, safe_decode

#: The readings: every field of the GPU schema after the ones that say which GPU,
#: in schema order. Each is the gpu_samples column named like the field without
#: "gpu.", dots as underscores (gpu.memory.used -> memory_used).
_IDENTITY = ("gpu.uuid", "gpu.index", "gpu.name")
_FIELDS = tuple(f.name for f in GPU if f.name.startswith("gpu.") and f.name not in _IDENTITY)
COLUMNS = ("timestamp", "node", "gpu_uuid", "gpu_index", "gpu_name", *(f[4:].replace(".", "_") for f in _FIELDS))


def gpu_rows(messages: list[RawMessage], max_bytes: int, retention: Retention,
             window_seconds: int) -> tuple[list[list], list[SourcedDeadLetter]]:
    """Rows for gpu_samples, and dead letters for what cannot be stored: invalid
    samples, samples older than ClickHouse keeps them (the TTL would delete
    them on insert, without a trace), and samples dated too far ahead of the
    worker's clock (they would move their host's watermark)."""
    rows, dead = [], []
    for m in messages:
        decoded = retention.split(safe_decode(m.value or b"", max_bytes, "gpu"), window_seconds)
        dead.extend(SourcedDeadLetter(d, m.topic, m.partition, m.offset) for d in decoded.dead)
        for e in decoded.events:
            rows.append([datetime.fromtimestamp(e["timestamp"], tz=timezone.utc), e["host.name"], e["gpu.uuid"],
                         e["gpu.index"], e.get("gpu.name") or "", *(e.get(f) for f in _FIELDS)])
    return rows, dead
