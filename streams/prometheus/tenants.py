"""The top-K tenants of the newest closed window on /metrics, merged across
workers, everything else as ``__other__``.

Each worker keeps one Space-Saving summary per window
(streams/windows/spacesaving.py, FLEETPULSE_TENANT_COUNTERS counters), fed
each durable batch's exact per-tenant counts (numpy; Python per counter, never
per tenant). On every evaluation tick it writes the summaries of closed windows that changed
to ``tenant_summaries`` (all their counters, under a new version), then reads
every worker's newest summary of the newest closed window, merges them and
exports the K largest: ``fleetpulse_tenant_requests{tenant}``, at most K+1
series (K tenants and ``__other__``, the window's remaining requests), and
the merged summary's error bound. Every worker exports the same merge, so
``max by (tenant)`` across workers is the fleet's answer.

A worker that dies leaves its summaries behind, and they are still merged:
what it counted was durable before it was counted (the handler observes a
batch after its write). Its replacement counts only what it writes itself.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timezone

import numpy as np
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from fleetpulse.clickhouse import ClickHouse
from fleetpulse.schemas.fields import OTHER
from fleetpulse.settings import Settings
from fleetpulse.streams.windows.spacesaving import Summary, merge, merge_all
from fleetpulse.streams.windows.tenants import TenantBlock

_COLUMNS = ("window_start", "window_seconds", "worker", "version", "capacity", "total", "tenant", "count", "error")
_READ_SQL = """
SELECT worker, any(capacity), any(total), groupArray(tenant), groupArray(count), groupArray(error)
FROM tenant_summaries
WHERE window_start = toDateTime({w:UInt32}) AND window_seconds = {s:UInt32}
  AND (worker, version) IN (SELECT worker, max(version) FROM tenant_summaries
                            WHERE window_start = toDateTime({w:UInt32}) AND window_seconds = {s:UInt32}
                            GROUP BY worker)
GROUP BY worker
"""


class TenantTopK(Collector):
    def __init__(self, settings: Settings, worker: str | None = None):
        self._k = settings.tenant_top_k
        self._capacity = max(settings.tenant_counters, settings.tenant_top_k)
        self._step = settings.window_seconds
        self.worker = worker or f"{settings.worker_id or 'worker'}-{uuid.uuid4().hex[:12]}"
        self._lock = threading.Lock()
        self._windows: dict[int, Summary] = {}
        self._names: dict[int, str] = {}  # the summary's name in tenant_summaries ("worker")
        self._forgot = -1  # the newest window forgotten
        self._dirty: set[int] = set()
        self.exported: tuple[int, Summary] | None = None

    def observe(self, block: TenantBlock | None) -> None:
        """Add one durable batch's tenant rows: exact counts per (window,
        tenant), then each window's C largest merged into its summary."""
        if block is None or not len(block):
            return
        starts, codes, counts = block.window_counts()
        values = block.tenant.values
        for w in np.unique(starts).tolist():
            here = np.flatnonzero(starts == w)
            if len(here) > self._capacity:  # only the C largest can enter (Summary.exact)
                here = here[np.argpartition(-counts[here], self._capacity)[:self._capacity + 1]]
                mass = int(counts[starts == w].sum())
            else:
                mass = int(counts[here].sum())
            batch = Summary.exact(self._capacity, [values[c] for c in codes[here].tolist()], counts[here])
            batch = Summary(batch.capacity, batch.keys, batch.counts, batch.errors, mass)
            with self._lock:
                if w not in self._windows:  # a window forgotten and seen again (late data) gets a summary of its own
                    self._names[w] = self.worker if w > self._forgot else f"{self.worker}+{uuid.uuid4().hex[:8]}"
                self._windows[w] = merge(self._windows.get(w) or Summary.empty(self._capacity), batch)
                self._dirty.add(w)

    def tick(self, ch: ClickHouse, last_closed: int | None) -> None:
        """Write the summaries of closed windows that changed (an open window
        is written once it closes: only closed ones are read), forget those
        long closed, and export the fleet's merge of the newest closed window."""
        with self._lock:
            closed = [w for w in sorted(self._dirty) if last_closed is not None and w <= last_closed]
            dirty = {w: (self._names[w], self._windows[w]) for w in closed}
            self._dirty.difference_update(closed)
        version = time.time_ns()
        rows = [[datetime.fromtimestamp(w, tz=timezone.utc), self._step, name, version, s.capacity, s.total,
                 key, count, error] for w, (name, s) in dirty.items() for key, count, error in s.top(s.capacity)]
        try:
            ch.insert("tenant_summaries", rows, _COLUMNS, dedup_token=f"tenants:{self.worker}:{version}")
        except Exception:
            with self._lock:
                self._dirty.update(dirty)  # written with the next tick
            raise
        if last_closed is None:
            return
        with self._lock:
            for w in [w for w in self._windows if w < last_closed - self._step and w not in self._dirty]:
                del self._windows[w], self._names[w]
                self._forgot = max(self._forgot, w)
        merged = read_merged(ch, last_closed, self._step, self._capacity)
        with self._lock:
            self.exported = (last_closed, merged)

    def describe(self):
        return []

    def collect(self):
        with self._lock:
            exported = self.exported
        requests = GaugeMetricFamily(
            "fleetpulse_tenant_requests", "Requests of the top FLEETPULSE_TENANT_TOP_K tenants in the newest closed "
            "window (Space-Saving estimates, all workers merged); the rest as tenant=\"__other__\".",
            labels=["tenant"])
        bound = GaugeMetricFamily("fleetpulse_tenant_requests_error_bound",
                                  "Most any fleetpulse_tenant_requests estimate can exceed the truth by.")
        window = GaugeMetricFamily("fleetpulse_tenant_window_start_seconds",
                                   "Start of the window fleetpulse_tenant_requests describes.")
        if exported is not None:
            start, summary = exported
            top = summary.top(self._k)
            for tenant, count, _ in top:
                requests.add_metric([tenant], count)
            requests.add_metric([OTHER], max(0, summary.total - sum(c for _, c, _ in top)))
            bound.add_metric([], summary.floor)
            window.add_metric([], start)
        yield requests
        yield bound
        yield window


def read_merged(ch: ClickHouse, window_start: int, window_seconds: int, capacity: int) -> Summary:
    """Every worker's newest summary of one window, merged."""
    rows = ch.query(_READ_SQL, parameters={"w": window_start, "s": window_seconds}).result_rows
    summaries = []
    for _, cap, total, keys, counts, errors in rows:
        counts = np.asarray(counts, dtype=np.int64)
        order = np.argsort(-counts, kind="stable")
        summaries.append(Summary(int(cap), np.asarray(keys, dtype=object)[order], counts[order],
                                 np.asarray(errors, dtype=np.int64)[order], int(total)))
    return merge_all(summaries, capacity)
