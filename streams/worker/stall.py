"""Is ingestion stalled? For /health, which a supervisor or load balancer reads.

A batch that cannot be made durable is retried, not skipped, so a worker whose
ClickHouse or dead-letter topic is down stays up and looks busy. This tells
that state apart: the oldest batch still in progress, how long it has been
going, and the last error its writes got.
"""

from __future__ import annotations

import itertools
import time
from contextlib import contextmanager
from typing import Callable, Iterator


class StallWatch:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._ids = itertools.count()
        self._working: dict[int, tuple[float, str]] = {}
        self._last_error = ""

    @contextmanager
    def working(self, what: str, waiting_for: str = "to be written") -> Iterator[None]:
        """Around the making-durable of one batch (or chunk of one), or other
        work that retries until ClickHouse or Kafka answers."""
        token = next(self._ids)
        self._working[token] = (self._clock(), f"{what} has been waiting {waiting_for}")
        try:
            yield
        finally:
            del self._working[token]
            if not self._working:
                self._last_error = ""

    def failed(self, error: str) -> None:
        """A write of the batch in progress failed and will be retried."""
        self._last_error = error

    def stalled(self, threshold_s: float) -> str | None:
        """Why ingestion is stalled, or None when every batch in progress is younger than ``threshold_s``."""
        if not self._working:
            return None
        started, waiting = min(self._working.values())
        age = self._clock() - started
        if age <= threshold_s:
            return None
        why = f"; last error: {self._last_error}" if self._last_error else ""
        return f"a {waiting} for {age:.0f}s (limit {threshold_s:g}s){why}"
