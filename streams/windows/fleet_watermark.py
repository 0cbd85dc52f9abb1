"""The fleet watermark, read from what ClickHouse holds, for the evaluators.

Drift, alert rules and GPU windows judge a window once it is closed. Closed
means closed for the whole fleet: every source still sending has passed it.
The sources are the requests topic's partitions (their newest event time
written, from request_windows, whichever worker wrote them) and, for alert
rules and GPU windows, the GPU hosts (their newest sample in gpu_samples).
Which sources are idle is pure logic (watermark.IdleTracker); this module
reads the high-water marks, keeps the fleet watermark from going back, and
exports both on ``/metrics``.

Windows are never judged early: one that a lagging partition has not yet
delivered stays open until the partition passes it or goes idle. Rows an idle
partition delivers later for windows already judged are stored and counted,
but the drift decisions and alert rules already made for those windows stand.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterable

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from fleetpulse.clickhouse import ClickHouse
from fleetpulse.settings import Settings
from fleetpulse.streams.windows.watermark import (IdleTracker, Source, SourceMark, fleet_high_water,
                                                  newest_closed_start)

#: Closed windows an evaluator takes per tick: a long backlog (a restart after
#: an outage) is worked off over several ticks instead of holding chDB's thread.
MAX_WINDOWS_PER_TICK = 200

#: The streams whose sources close windows: drift reads requests only; alert
#: rules and GPU windows (joined with request tokens) follow both, so that GPU
#: hosts still reporting move the rules on when every request has stopped.
REQUESTS = ("requests",)
REQUESTS_AND_GPU = ("requests", "gpu")

_REQUESTS_SQL = ("SELECT concat(source_topic, ':', toString(source_partition)), max(max_event_time) "
                 "FROM request_windows GROUP BY source_topic, source_partition")
_GPU_SQL = "SELECT node, toFloat64(max(timestamp)) FROM gpu_samples GROUP BY node"


class FleetWatermark:
    def __init__(self, settings: Settings, ch: ClickHouse,
                 busy: Callable[[], Iterable[tuple[str, int]]] = lambda: (),
                 clock: Callable[[], float] = time.monotonic):
        """``busy``: the (topic, partition) pairs with messages not yet written
        (the consumer's lag), which never go idle."""
        self._s = settings
        self._ch = ch
        self._busy = busy
        self._clock = clock
        self._tracker = IdleTracker(settings.idle_partition_seconds)
        self._lock = threading.Lock()  # a scrape reads what an evaluator's thread wrote
        self._marks: dict[Source, SourceMark] = {}
        self._fleet: dict[tuple[str, ...], float] = {}

    def last_closed(self, streams: tuple[str, ...] = REQUESTS) -> int | None:
        """The start of the newest window closed for the whole fleet (inclusive),
        or None before any data; reads ClickHouse once."""
        return newest_closed_start(self.refresh()[tuple(streams)], self._s.window_seconds,
                                   self._s.allowed_lateness_seconds)

    def refresh(self) -> dict[tuple[str, ...], float | None]:
        """Read every source's high-water mark (all of them each time: the idle
        clock of a source must not restart because one reader skipped it)."""
        high_waters = {("requests", p): float(t) for p, t in self._ch.query(_REQUESTS_SQL).result_rows}
        high_waters.update({("gpu", node): float(t) for node, t in self._ch.query(_GPU_SQL).result_rows
                            if t is not None})
        busy = {("requests", f"{t}:{p}") for t, p in self._busy()}
        with self._lock:
            self._marks = self._tracker.observe(high_waters, busy, self._clock())
            for streams in (REQUESTS, REQUESTS_AND_GPU):
                high = fleet_high_water(self._marks, streams)
                if high is not None:  # a window once closed stays closed
                    self._fleet[streams] = max(high, self._fleet.get(streams, high))
            return {streams: self._fleet.get(streams) for streams in (REQUESTS, REQUESTS_AND_GPU)}

    def collector(self) -> Collector:
        return _WatermarkCollector(self)

    def snapshot(self) -> tuple[dict[Source, SourceMark], dict[tuple[str, ...], float]]:
        with self._lock:
            return dict(self._marks), dict(self._fleet)


class _WatermarkCollector(Collector):
    """The watermarks as the evaluators last read them: no query at scrape time."""

    def __init__(self, fleet: FleetWatermark):
        self._fleet = fleet

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return self._families(self._fleet._s.allowed_lateness_seconds, {}, {})

    def collect(self) -> Iterable[GaugeMetricFamily]:
        marks, fleet = self._fleet.snapshot()
        return self._families(self._fleet._s.allowed_lateness_seconds, marks, fleet)

    def _families(self, lateness: float, marks: dict, fleet: dict) -> list[GaugeMetricFamily]:
        fleet_family = GaugeMetricFamily(
            "fleetpulse_fleet_watermark_seconds",
            "Event time up to which windows are closed for the whole fleet: the oldest watermark among "
            "sources not idle (newest event time minus the allowed lateness). `streams` names the sources: "
            "requests (drift) or requests+gpu (alert rules and GPU windows).",
            labels=["streams"])
        for streams, high in sorted(fleet.items()):
            fleet_family.add_metric(["+".join(streams)], high - lateness)
        partition = GaugeMetricFamily(
            "fleetpulse_partition_watermark_seconds",
            "Each partition's watermark (its newest event time written, by any worker, minus the allowed "
            "lateness).", labels=["topic", "partition"])
        host = GaugeMetricFamily("fleetpulse_gpu_host_watermark_seconds",
                                 "Each GPU host's watermark (its newest sample minus the allowed lateness).",
                                 labels=["node"])
        idle = GaugeMetricFamily(
            "fleetpulse_watermark_source_idle",
            "1 when a source (a requests partition or a GPU host) has sent nothing new for "
            "FLEETPULSE_IDLE_PARTITION_SECONDS and no longer holds the fleet watermark back.",
            labels=["stream", "source"])
        for (stream, name), mark in sorted(marks.items()):
            idle.add_metric([stream, name], float(mark.idle))
            if mark.high_water == float("-inf"):
                continue
            if stream == "requests":
                partition.add_metric(name.rsplit(":", 1), mark.high_water - lateness)
            else:
                host.add_metric([name], mark.high_water - lateness)
        return [fleet_family, partition, host, idle]
