"""Write GPU windows: per (window, node, GPU), for the base window, 1 minute and 1 hour.

A window is computed from the stored samples (``gpu_samples FINAL``) when it
closes, and again whenever a late sample lands in a window already written.
The tables replace a row by a newer computation of the same (window, node,
GPU), so computing a window twice is harmless: after a crash the worker simply
recomputes the last stretch it may have left half written. With the raw
samples collapsing on (node, GPU, time), every level is exact however often a
sample or a window is processed.

All calls run on the sink's thread (the same one that writes the samples), so
a sample's write and the check "is its window already written?" never
interleave with a window computation of this worker.
"""

from __future__ import annotations

import dataclasses
import logging
import time

from typing import Callable

from fleetpulse.clickhouse import ClickHouse
from fleetpulse.settings import Settings
from fleetpulse.streams.windows.batch import Retention
from fleetpulse.streams.windows.fleet_watermark import REQUESTS_AND_GPU, FleetWatermark
from fleetpulse.streams.windows.grid import window_start

log = logging.getLogger("fleetpulse.gpu")

#: Seconds of samples one INSERT computes windows for (one window at least): it
#: stays far below one insert block, so it lands as one part, and after a
#: restart recomputing the last such stretch repairs whatever a crash cut short.
INSERT_SPAN_S = 3600
#: Seconds a tick may spend catching up (e.g. refilling after an upgrade)
#: before it lets the alert rules and the next batch have the thread.
TICK_BUDGET_S = 1.0
#: Counters (energy, ECC) increase from the sample before: one at most this far
#: back, so an interval that spans a gap in the samples is not attributed.
COUNTER_LOOKBACK_S = 60


@dataclasses.dataclass
class Level:
    table: str
    seconds: int
    next_start: int | None = None  # the first window not written yet

    @property
    def span(self) -> int:
        """Seconds of windows one INSERT writes."""
        return max(1, INSERT_SPAN_S // self.seconds) * self.seconds


# The window's statistics from its samples. Time bounds are DateTime64 like the
# column: chDB 26.9 answered `timestamp < toDateTime(x)` with no rows for some
# merged parts of gpu_samples (not reduced to a small case; seen in tests).
# Counter increases are per interval between a sample's value and the GPU's
# previous non-null value (at most COUNTER_LOOKBACK_S before), credited to the
# window of the later sample; a decrease is a reset (driver reload, reboot),
# where the new value is the increase. A null reading (a failed NVML call)
# neither counts nor breaks the interval: the next value spans it. This is
# Prometheus' increase() over the samples, without its extrapolation to the
# window's edges. anyLast skips nulls, and a frame from UNBOUNDED PRECEDING is
# computed incrementally.
_WINDOW_SQL = """
INSERT INTO {table}
SELECT window_start, {seconds}, node, gpu_uuid, any(gpu_index), any(gpu_name), count(),
       min(utilization), avg(utilization), max(utilization), argMax(utilization, timestamp),
       avg(memory_utilization), max(memory_used), argMax(memory_used, timestamp),
       argMax(memory_total, timestamp), max(memory_used / memory_total),
       min(temperature), avg(temperature), max(temperature), argMax(temperature, timestamp),
       min(power_usage), avg(power_usage), max(power_usage), argMax(power_usage, timestamp),
       argMax(power_limit, timestamp), min(clock_sm), avg(clock_sm), avg(clock_memory),
       groupBitOr(ifNull(throttle_reasons, 0)), sum(energy_increase), sum(ecc_increase),
       avg(pcie_tx), avg(pcie_rx), argMax(xid, timestamp),
       now64(6)
FROM
(
    SELECT *, toStartOfInterval(timestamp, toIntervalSecond({seconds})) AS window_start,
           if(dateDiff('millisecond', prev_energy_at, timestamp) <= {lookback_ms} AND energy IS NOT NULL,
              if(energy >= prev_energy, energy - prev_energy, energy), NULL) AS energy_increase,
           if(dateDiff('millisecond', prev_ecc_at, timestamp) <= {lookback_ms} AND ecc_volatile IS NOT NULL,
              if(ecc_volatile >= prev_ecc, toFloat64(ecc_volatile) - prev_ecc, toFloat64(ecc_volatile)),
              NULL) AS ecc_increase
    FROM
    (
        SELECT *,
               anyLast(energy) OVER w AS prev_energy,
               anyLast(if(energy IS NULL, NULL, timestamp)) OVER w AS prev_energy_at,
               anyLast(ecc_volatile) OVER w AS prev_ecc,
               anyLast(if(ecc_volatile IS NULL, NULL, timestamp)) OVER w AS prev_ecc_at
        FROM gpu_samples FINAL
        WHERE timestamp >= toDateTime64({{lo:UInt32}} - {lookback_s}, 3, 'UTC')
              AND timestamp < toDateTime64({{hi:UInt32}}, 3, 'UTC')
              {pair_filter}
        WINDOW w AS (PARTITION BY node, gpu_uuid ORDER BY timestamp
                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
    )
    WHERE timestamp >= toDateTime64({{lo:UInt32}}, 3, 'UTC') {window_filter}
)
GROUP BY window_start, node, gpu_uuid
"""


def window_sql(table: str, seconds: int, only_some: bool = False) -> str:
    """The INSERT ... SELECT computing ``table``'s windows that start in
    [lo, hi); with ``only_some``, just the listed windows of the listed GPUs."""
    return _WINDOW_SQL.format(
        table=table, seconds=seconds, lookback_s=COUNTER_LOOKBACK_S, lookback_ms=COUNTER_LOOKBACK_S * 1000,
        pair_filter="AND (node, gpu_uuid) IN {gpus:Array(Tuple(String, String))}" if only_some else "",
        window_filter="AND toUInt32(window_start) IN {starts:Array(UInt32)}" if only_some else "")


#: The newest written base window of each GPU, for its Prometheus gauges.
_LATEST_SQL = """
SELECT node, toString(argMax(gpu_index, window_start)), argMax(utilization_avg, window_start),
       argMax(memory_used_ratio, window_start), argMax(temperature_max, window_start),
       argMax(power_avg, window_start), argMax(energy_joules, window_start)
FROM gpu_windows FINAL
WHERE window_start >= toDateTime({lo:UInt32}) AND window_start < toDateTime({hi:UInt32})
      AND window_seconds = {seconds:UInt32}
GROUP BY node, gpu_uuid
"""
GAUGES = ("utilization_percent", "memory_used_ratio", "temperature_celsius", "power_watts", "energy_joules")


class GpuWindowWriter:
    def __init__(self, settings: Settings, ch: ClickHouse,
                 on_latest: Callable[[str, str, dict], None] = lambda *a: None,
                 watermark: FleetWatermark | None = None):
        self._s = settings
        self._ch = ch
        self._watermark = watermark or FleetWatermark(settings, ch)
        self._on_latest = on_latest  # (node, GPU index, {gauge: value}) per GPU with a newly closed window
        self.levels = [Level("gpu_windows", settings.window_seconds), Level("gpu_windows_1m", 60),
                       Level("gpu_windows_1h", 3600)]

    def tick(self) -> int:
        """Write every window that has closed since the last tick (all GPUs);
        returns how many windows (per GPU) were written."""
        last = self._watermark.last_closed(REQUESTS_AND_GPU)
        if last is None:
            return 0
        closed_end = last + self._s.window_seconds
        deadline = time.monotonic() + TICK_BUDGET_S
        written = 0
        for level in self.levels:
            start = self._next_start(level)
            if start is None:
                continue
            end = window_start(closed_end, level.seconds)
            while start < end and time.monotonic() < deadline:
                stop = min(end, start + level.span)
                self._ch.command(window_sql(level.table, level.seconds), parameters={"lo": start, "hi": stop})
                if level is self.levels[0]:
                    self.publish_latest(start, stop)
                written += (stop - start) // level.seconds
                level.next_start = start = stop
            if start < end:
                log.info("GPU windows: %s is catching up, %d windows to go", level.table,
                         (end - start) // level.seconds)
        return written

    def publish_latest(self, lo: int, hi: int) -> None:
        params = {"lo": lo, "hi": hi, "seconds": self.levels[0].seconds}
        for node, gpu, *values in self._ch.query(_LATEST_SQL, parameters=params).result_rows:
            self._on_latest(node, gpu, dict(zip(GAUGES, values)))

    def rewrite_late(self, rows: list[list]) -> int:
        """After ``rows`` (gpu_samples columns: timestamp, node, gpu_uuid, ...)
        are stored, recompute the windows among them that are already written.
        Returns how many of the rows were late for at least one level.

        A window that starts before gpu_samples' retention is left as it is:
        the TTL may have deleted its first samples, and recomputing it would
        replace a whole window with a part of it. (Only a 1 m or 1 h window can
        be such: samples whose base window is that old are dead-lettered.)"""
        oldest = Retention.now(self._s).oldest_window_start
        late_rows = set()
        for level in self.levels:
            start = self._next_start(level)
            if start is None:
                continue
            starts, gpus = set(), set()
            for i, row in enumerate(rows):
                t = int(row[0].timestamp())
                window = window_start(t, level.seconds)
                if window < start:
                    late_rows.add(i)
                    gpus.add((row[1], row[2]))
                    # The sample also splits the counter increase credited to the
                    # sample after it, which can be in a later window.
                    last = window_start(min(t + COUNTER_LOOKBACK_S, start - 1), level.seconds)
                    starts.update(w for w in range(window, last + 1, level.seconds) if w >= oldest)
            if starts:
                self._ch.command(window_sql(level.table, level.seconds, only_some=True), parameters={
                    "lo": min(starts), "hi": max(starts) + level.seconds, "starts": sorted(starts),
                    "gpus": sorted(gpus)})
        return len(late_rows)

    def written_end(self) -> int | None:
        """The end of the written base windows, exclusive: the start of the first
        one not written yet (None: no GPU samples so far). Compare with the
        fleet watermark's ``last_closed``, an inclusive start."""
        return self.levels[0].next_start

    def _next_start(self, level: Level) -> int | None:
        """Where this level goes on.

        After a (re)start, the last stretch one INSERT may have left half
        written is computed again. It ends with the newest window of any size,
        aligned to this level's size, so after a change of
        FLEETPULSE_WINDOW_SECONDS the new size takes over from there. With
        nothing written yet: the oldest stored sample's window, or the first
        window wholly inside gpu_samples' retention (a refill after an upgrade)."""
        if level.next_start is None:
            end, n = self._ch.query(f"SELECT max(toUInt32(window_start) + window_seconds), count() "
                                    f"FROM {level.table}").result_rows[0]
            if n:
                level.next_start = window_start(end - level.span, level.seconds)
            else:
                oldest = self._ch.query("SELECT toUInt32(min(timestamp)), count() FROM gpu_samples").result_rows[0]
                if oldest[1]:
                    start = window_start(oldest[0], level.seconds)
                    kept = Retention.now(self._s).oldest_window_start
                    if start < kept:  # the TTL may have deleted its first samples: begin at a whole window
                        start = -(-int(kept) // level.seconds) * level.seconds
                    level.next_start = start
        return level.next_start
