"""The window grid: where event-time windows start (pure).

Every window of every size is ``[k * seconds, (k + 1) * seconds)`` in epoch
seconds, UTC; request windows, GPU windows, rollups and the watermark all
place times on the grid through these two functions.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np


def window_start(t: float, seconds: int) -> int:
    """The start of the window holding epoch second ``t``."""
    return int(t // seconds * seconds)


def utc(epoch: float) -> datetime:
    """Epoch seconds as an aware UTC datetime, as ClickHouse's DateTime columns take them."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


def window_starts(timestamps: np.ndarray, seconds: int) -> np.ndarray:
    """Event-time tumbling windows: the epoch second each event's window starts at."""
    return (np.floor(timestamps / seconds) * seconds).astype(np.int64)
