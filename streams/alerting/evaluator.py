"""Run the alert rules on every closed window and send what they decide.

Metrics per closed window come from ClickHouse (request_stats_model,
drift_windows, gpu_windows), so every worker sees the same numbers; the state
machine is in ``engine.py``. Rules run in three tracks, each with its own
cursor: request rules follow the fleet watermark of the requests partitions
and GPU hosts (fleet_watermark.py): GPU hosts still reporting move it on when
every request stops, so ``ModelSilent`` can fire then; drift rules follow the
windows the drift evaluator has stored (it is the only source of drift
alerts); GPU rules follow the GPU window writer. Inhibition applies within a
track.
Events go to the ``alerts`` table, the alerts topic and, with
FLEETPULSE_ALERTMANAGER_URL, Alertmanager's /api/v2/alerts: firing alerts are
re-sent every window with a short ``endsAt`` (as Prometheus does), so
Alertmanager keeps them open while they last and closes them if we vanish.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

import orjson

from fleetpulse.clickhouse import ClickHouse
from fleetpulse.settings import Settings
from fleetpulse.streams.alerting.engine import AlertEngine, Silence
from fleetpulse.streams.alerting.notify import post_json
from fleetpulse.streams.alerting.outbox import Outbox
from fleetpulse.streams.alerting.rules import METRICS, load_rules
from fleetpulse.streams.alerting.silences import read_silences
from fleetpulse.streams.windows.fleet_watermark import MAX_WINDOWS_PER_TICK, REQUESTS_AND_GPU, FleetWatermark
from fleetpulse.streams.windows.grid import utc

log = logging.getLogger("fleetpulse.alerts")

#: Per tenant of window {w}: its requests and the median of its requests in the
#: {m} windows before, absent ones as 0 (sorted, ``zeros`` zeros come first: the
#: upper median is element m/2).
_TENANT_SQL = """
SELECT tenant, cur, median FROM (
    SELECT tenant, sumIf(r, ws = toDateTime({{w:UInt32}})) AS cur, arraySort(groupArrayIf(r, ws < toDateTime({{w:UInt32}}))) AS past,
           {{m:UInt32}} - length(past) AS zeros,
           if(intDiv({{m:UInt32}}, 2) < zeros, 0, past[intDiv({{m:UInt32}}, 2) - zeros + 1]) AS median
    FROM (SELECT tenant, window_start AS ws, sum(requests) AS r FROM tenant_windows
          WHERE window_start BETWEEN toDateTime({{lo:UInt32}}) AND toDateTime({{w:UInt32}})
            AND window_seconds = {{s:UInt32}}
          GROUP BY tenant, ws)
    GROUP BY tenant)
WHERE cur > 0 AND median > 0 {having}
"""
_DRIFT_LEVEL = "multiIf(decision = 'critical', 3, decision = 'warning', 2, decision = 'drift', 1, 0)"


@dataclasses.dataclass
class _Track:
    """Rules that read one kind of window, with their own engine and cursor."""

    name: str
    engine: AlertEngine
    fetch: Callable[[int, int], dict[int, dict[str, list]]]  # (first, last window) -> samples per window
    until: Callable[[], int | None]  # the newest window it may evaluate (None: none yet)
    start: Callable[[], int | None] | None = None  # where to begin; None: at ``until``, the present
    next: int | None = None  # the next window to evaluate


class AlertEvaluator:
    def __init__(self, settings: Settings, ch: ClickHouse, publish: Callable[[list[dict]], None],
                 gpu_written_end: Callable[[], int | None] = lambda: None,
                 watermark: FleetWatermark | None = None,
                 drift_stored: Callable[[], tuple[int, int] | None] = lambda: None):
        self._s = settings
        self._ch = ch
        self._watermark = watermark or FleetWatermark(settings, ch)
        self._publish = publish
        rules = load_rules(settings.alert_rules)
        # GPU windows are written by GpuWindowWriter, which can trail the
        # watermark (a tick's budget, a refill, GPU batches stored since its
        # tick). A window it has not written reads as "no sample", which would
        # resolve a GPU alert, so GPU rules evaluate only written windows, on a
        # cursor of their own: request and drift rules never wait for them.
        # Drift rules likewise read exactly the windows the drift evaluator has
        # stored (it trails the watermark by its tick budget, a failed insert,
        # or the GPU hosts moving on when every request stops), from the first
        # it judged: every drift decision goes through them. Request rules do
        # not wait for it, so ModelSilent still fires when every request stops.
        self._gpu_written_end = gpu_written_end
        self._drift_stored = drift_stored
        self._tenant_rules = [r for r in rules if r.source == "tenant"]
        tracks = [_Track("requests", AlertEngine([r for r in rules if r.source in ("request", "silence", "tenant")]),
                         self._request_samples, lambda: self._watermark.last_closed(REQUESTS_AND_GPU)),
                  _Track("drift", AlertEngine([r for r in rules if r.source == "drift"]), self._drift_samples,
                         self._drift_until, self._drift_start),
                  _Track("gpu", AlertEngine([r for r in rules if r.source == "gpu"]), self._gpu_samples,
                         self._gpu_until)]
        self._tracks = [t for t in tracks if t.engine.rules]
        self._step = settings.window_seconds
        self._models: set[str] = set()
        self._outbox = Outbox()
        # Alertmanager is called from a thread of its own: a slow or absent one must
        # not hold the sink's thread (ingestion). One push at a time; resolutions
        # not yet delivered ride along with the next push.
        self._pusher = ThreadPoolExecutor(1, thread_name_prefix="fleetpulse-alertmanager")
        self._push_future: Future | None = None
        self._unsent_resolved: list[dict] = []

    def tick(self) -> int:
        """Evaluate the windows closed since the last tick; returns how many (all tracks)."""
        self._outbox.flush()  # what earlier windows decided goes out first
        events, spans, silences = [], [], None
        for track in self._tracks:
            end = track.until()
            if end is None:
                continue
            if track.next is None:  # start at the present (no alerts about the distant past) or the track's own start
                track.next = track.start() if track.start else end
            if track.next > end:
                continue
            first, end = track.next, min(end, track.next + self._step * (MAX_WINDOWS_PER_TICK - 1))
            samples = track.fetch(first, end)
            silences = self.silences() if silences is None else silences
            for w in range(first, end + 1, self._step):
                events += track.engine.observe(w + self._step, samples.get(w, {}), silences)
            track.next = end + self._step
            spans.append((track.name, first, end))
        if not spans:
            return 0
        token = "alerts:" + ",".join(f"{name}:{first}-{end}" for name, first, end in spans)
        if events:
            self._outbox.add(lambda: self._store(events, token), lambda: self._publish(events))
        self._outbox.add(lambda: self._push(events))
        self._outbox.flush()
        return sum((end - first) // self._step + 1 for _, first, end in spans)

    def _gpu_until(self) -> int | None:
        last, written = self._watermark.last_closed(REQUESTS_AND_GPU), self._gpu_written_end()
        return None if last is None or written is None else min(last, written - self._step)

    def _drift_until(self) -> int | None:
        span = self._drift_stored()
        return span[1] if span else None

    def _drift_start(self) -> int | None:
        span = self._drift_stored()
        return span[0] if span else None

    def _request_samples(self, first: int, last: int) -> dict[int, dict[str, list]]:
        params = {"lo": first, "hi": last, "w": self._step}
        columns = [column for source, column in METRICS.values() if source == "request"]
        rows = self._ch.query(
            f"SELECT toUnixTimestamp(window_start), model, requests, {', '.join(columns)} "
            "FROM request_stats_model WHERE window_start BETWEEN toDateTime({lo:UInt32}) AND toDateTime({hi:UInt32}) "
            "AND window_seconds = {w:UInt32}", parameters=params).result_rows
        out: dict[int, dict[str, list]] = {}
        seen: dict[int, set[str]] = {}
        for w, model, requests, *values in rows:
            self._models.add(model)
            seen.setdefault(w, set()).add(model)
            by_metric = out.setdefault(w, {})
            labels = {"model": model}
            for metric, value in (*zip(columns, values), ("requests", requests)):
                by_metric.setdefault(metric, []).append((labels, value))
        for w in range(first, last + 1, self._step):  # a model seen before and silent now reads 0
            for model in self._models - seen.get(w, set()):
                out.setdefault(w, {}).setdefault("requests", []).append(({"model": model}, 0))
            if self._tenant_rules:
                out.setdefault(w, {})["tenant_requests_ratio"] = self._tenant_samples(w)
        return out

    def _tenant_samples(self, w: int) -> list:
        """(tenant, requests / trailing median) for the tenants that may cross
        a tenant rule's threshold. The median is computed in ClickHouse over
        every tenant of the window; only the candidates come back (a tenant
        with no sample reads as "condition false"), so Python runs per
        spiking tenant, never per tenant."""
        ops = {r.op for r in self._tenant_rules}
        above = min(r.threshold for r in self._tenant_rules) if ops <= {">", ">="} else None
        rows = self._ch.query(_TENANT_SQL.format(having="AND cur >= {above:Float64} * median" if above else ""),
                              parameters={"w": w, "lo": w - self._s.tenant_baseline_windows * self._step,
                                          "m": self._s.tenant_baseline_windows, "s": self._step,
                                          "above": above or 0.0}).result_rows
        return [({"tenant": tenant}, cur / median) for tenant, cur, median in rows]

    def _drift_samples(self, first: int, last: int) -> dict[int, dict[str, list]]:
        """Per window: ``feature_drift_level`` per (model, feature) and
        ``drift_level``, the worst of a model's features."""
        rows = self._ch.query(
            f"SELECT toUnixTimestamp(window_start), model, feature, max({_DRIFT_LEVEL}) FROM drift_windows "
            "WHERE window_start BETWEEN toDateTime({lo:UInt32}) AND toDateTime({hi:UInt32}) GROUP BY 1, 2, 3",
            parameters={"lo": first, "hi": last}).result_rows
        out: dict[int, dict[str, list]] = {}
        worst: dict[tuple[int, str], int] = {}
        for w, model, feature, level in rows:
            out.setdefault(w, {}).setdefault("feature_drift_level", []).append(
                ({"model": model, "feature": feature}, level))
            worst[(w, model)] = max(level, worst.get((w, model), 0))
        for (w, model), level in worst.items():
            out[w].setdefault("drift_level", []).append(({"model": model}, level))
        return out

    def _gpu_samples(self, first: int, last: int) -> dict[int, dict[str, list]]:
        gpu = self._ch.query(
            "SELECT toUnixTimestamp(window_start), node, toString(gpu_index), utilization_avg, memory_used_ratio, "
            "temperature_max FROM gpu_windows FINAL "
            "WHERE window_start BETWEEN toDateTime({lo:UInt32}) AND toDateTime({hi:UInt32}) "
            "AND window_seconds = {w:UInt32} ORDER BY 1", parameters={"lo": first, "hi": last, "w": self._step})
        out: dict[int, dict[str, list]] = {}
        for w, node, index, utilization, memory, temperature in gpu.result_rows:
            labels = {"node": node, "gpu": index}
            for metric, value in (("gpu_utilization_avg", utilization), ("gpu_memory_used_ratio", memory),
                                  ("gpu_temperature_max", temperature)):
                out.setdefault(w, {}).setdefault(metric, []).append((labels, value))
        return out

    def silences(self) -> list[Silence]:
        return read_silences(self._ch)

    def _store(self, events: list[dict], token: str) -> None:
        ts = lambda v: None if v is None else utc(v)  # noqa: E731
        rows = [[ts(e["timestamp"]), e["alert.name"], e["status"], e["severity"], e["fingerprint"], e["labels"],
                 e["annotations"], ts(e["starts_at"]), ts(e["ends_at"]), e["value"]] for e in events]
        self._ch.insert("alerts", rows, ("timestamp", "alert_name", "status", "severity", "fingerprint", "labels",
                                         "annotations", "starts_at", "ends_at", "value"),
                        dedup_token=token)

    def _push(self, events: list[dict]) -> None:
        """Every notified alert (refreshed) plus the resolutions not yet delivered."""
        if not self._s.alertmanager_url:
            return
        previous = self._push_future
        if previous is not None:
            if not previous.done():
                self._unsent_resolved += [e for e in events if e["status"] == "resolved"]
                return  # still busy: this window's state goes with the next push
            del self._unsent_resolved[:previous.result()]
        self._unsent_resolved += [e for e in events if e["status"] == "resolved"]
        now = time.time()
        resolved = list(self._unsent_resolved)
        notified = [e for track in self._tracks for e in track.engine.notified()]
        payload = [_to_alertmanager(e, now + 5 * self._step) for e in notified]
        payload += [_to_alertmanager(e, e["ends_at"]) for e in resolved]
        if payload:
            url = self._s.alertmanager_url
            self._push_future = self._pusher.submit(lambda: len(resolved) if post_alertmanager(url, payload) else 0)


def _iso(epoch: float) -> str:
    return utc(epoch).isoformat().replace("+00:00", "Z")


def _to_alertmanager(event: dict, ends_at: float) -> dict:
    return {"labels": event["labels"], "annotations": event["annotations"], "startsAt": _iso(event["starts_at"]),
            "endsAt": _iso(ends_at), "generatorURL": "fleetpulse://alert-rules"}


def post_alertmanager(base_url: str, alerts: list[dict], attempts: int = 3) -> bool:
    return post_json(base_url.rstrip("/") + "/api/v2/alerts", orjson.dumps(alerts), "Alertmanager", attempts)
