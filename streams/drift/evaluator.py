"""Drift detection in the stream: every closed window, per model and feature.

A window is evaluated once the fleet watermark (fleet_watermark.py: the oldest
newest-event-time among the partitions still sending, minus the allowed
lateness) has passed its end, and never before: a partition behind the others
is waited for. The current distribution is the
sliding sum of the last ``FLEETPULSE_DRIFT_WINDOW_MINUTES`` of windows, built
from the per-window histograms stored with the window rows; the reference is
one of:
- ``previous``: the same span just before it;
- ``yesterday``: the same span 24 hours earlier;
- ``baseline``: the newest frozen baseline (``fleetpulse drift baseline``).
Statistics and the decision are in streams/drift/stats.py. Results go to
``drift_windows`` (the ``drift_stats`` view) and to Prometheus gauges. Alerts
are not sent from here: the alert engine reads drift_windows (rules on
``drift_level`` and ``feature_drift_level``, streams/alerting/evaluator.py), so
drift alerts get the same fingerprints, silences, inhibition, ``alerts`` table,
Alertmanager and webhook as every other alert. It reads only windows this
evaluator has stored (:meth:`DriftEvaluator.stored_span`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from typing import Callable

import numpy as np

from fleetpulse.clickhouse import ClickHouse
from fleetpulse.settings import Settings
from fleetpulse.streams.alerting.outbox import Outbox
from fleetpulse.streams.drift import stats as ds
from fleetpulse.streams.drift.baselines import latest_baselines
from fleetpulse.streams.drift.features import FEATURES
from fleetpulse.streams.windows.fleet_watermark import MAX_WINDOWS_PER_TICK, REQUESTS, FleetWatermark
from fleetpulse.streams.windows.grid import utc

log = logging.getLogger("fleetpulse.drift")

TICK_BUDGET_S = 0.25  # per tick; a backlog is worked off over several ticks
DAY_S = 86400


Histograms = dict[str, dict]  # feature -> histogram of one window (or span)


@dataclasses.dataclass
class Series:
    """Per-window histograms of one model, by window start."""

    windows: dict[int, Histograms] = dataclasses.field(default_factory=dict)

    def span(self, first: int, last: int, step: int, feature: str) -> dict:
        total: Counter = Counter()
        for w in range(first, last + 1, step):
            hist = self.windows.get(w)
            if hist:
                total.update(hist[feature])
        return total


class DriftEvaluator:
    def __init__(self, settings: Settings, ch: ClickHouse, set_gauges: Callable[[str, str, ds.Verdict], None],
                 watermark: FleetWatermark | None = None):
        self._s = settings
        self._ch = ch
        self._watermark = watermark or FleetWatermark(settings, ch)
        self._set_gauges = set_gauges
        self._features = settings.drift_feature_names
        self._reference_of = settings.drift_reference_of
        self._rule = ds.Significance(alpha=settings.drift_alpha, min_count=settings.drift_min_count)
        self._step = settings.window_seconds
        self._span = settings.drift_window_minutes * 60
        self._next: int | None = None
        self._stored: tuple[int, int] | None = None  # windows evaluated and stored by this process
        self._outbox = Outbox()

    def tick(self) -> int:
        """Evaluate closed windows not yet evaluated, at most a bounded number
        per call so a long backlog does not hold ClickHouse for long; returns
        how many windows it covered (0: caught up)."""
        self._outbox.flush()  # what earlier windows decided goes out first
        last_closed = self._watermark.last_closed(REQUESTS)
        if last_closed is None:
            return 0
        if self._next is None:
            self._next = self._restore()
        if self._next is None or self._next > last_closed:
            return 0
        first, end = self._next, min(last_closed, self._next + self._step * (MAX_WINDOWS_PER_TICK - 1))
        rows, end = self._evaluate_range(first, end)
        self._next = end + self._step  # evaluated: the decisions stand, delivery may be retried
        self._outbox.add(lambda: self._store(rows, f"drift:{first}-{end}", first, end))
        self._outbox.flush()
        return (end - first) // self._step + 1

    def stored_span(self) -> tuple[int, int] | None:
        """The first window this process evaluated and the newest whose rows are
        in drift_windows (None: none yet). The alert rules on drift read exactly
        these: every decision goes through them, and a window not yet stored
        would read as "no drift" and resolve a drift alert."""
        return self._stored

    def _store(self, rows: list[list], token: str, first: int, end: int) -> None:
        if rows:
            self._ch.insert("drift_windows", rows, _DRIFT_COLUMNS, dedup_token=token)
        self._stored = (self._stored[0] if self._stored else first, end)

    def _restore(self) -> int | None:
        """Resume after the last stored window."""
        rows = self._ch.query("SELECT toUnixTimestamp(max(window_start)) FROM drift_windows "
                              "HAVING count() > 0").result_rows
        if rows:
            return int(rows[0][0]) + self._step
        first = self._ch.query("SELECT toUnixTimestamp(min(window_start)) FROM request_windows "
                               "WHERE window_seconds = {w:UInt32}", parameters={"w": self._step}).result_rows[0][0]
        return int(first) if first else None

    def _evaluate_range(self, first: int, last: int) -> tuple[list[list], int]:
        """Evaluate windows from ``first`` on, up to ``last`` or until the time
        budget is spent (it runs on the sink's thread: ingestion comes first);
        returns the rows and the last window evaluated."""
        lookback = self._span * 2 + DAY_S if self._needs_yesterday() else self._span * 2
        series = self._load(first - lookback, last)
        baselines = latest_baselines(self._ch) if "baseline" in self._s.drift_reference else {}
        rows = []
        started = time.perf_counter()
        for w in range(first, last + 1, self._step):
            if w > first and time.perf_counter() - started > TICK_BUDGET_S:
                return rows, w - self._step
            for model, s in series.items():
                for feature in self._features:
                    verdict, reference = self._judge(model, feature, s, w, baselines)
                    if verdict is None:
                        continue
                    rows.append([utc(w), model, feature, reference, verdict.psi, verdict.ks, verdict.js,
                                 verdict.n_ref, verdict.n_cur, verdict.threshold, verdict.decision])
                    self._set_gauges(model, feature, verdict)
        return rows, last

    def _judge(self, model: str, feature: str, s: Series, w: int, baselines) -> tuple[ds.Verdict | None, str]:
        kind, _ = FEATURES[feature]
        window_first = w - self._span + self._step
        current = s.span(window_first, w, self._step, feature)
        if not current:
            return None, ""
        mode = self._reference_of(model)
        if mode == "baseline":
            base = baselines.get((model, feature))
            if base is None:
                return ds.evaluate(np.zeros(2), np.zeros(2), self._rule, True), "baseline:none"
            cur = (ds.bin_numeric(current, base.edges) if kind == "numeric"
                   else ds.bin_categorical(current, base.categories))
            return ds.evaluate(base.counts, cur, self._rule, kind == "numeric"), f"baseline:v{base.version}"
        shift = self._span if mode == "previous" else DAY_S
        reference = s.span(window_first - shift, w - shift, self._step, feature)
        ref, cur = self._bin(kind, reference, current)
        return ds.evaluate(ref, cur, self._rule, kind == "numeric"), mode

    def _bin(self, kind: str, reference: dict, current: dict) -> tuple[np.ndarray, np.ndarray]:
        if kind == "numeric":
            edges = ds.numeric_edges(reference, self._s.drift_bins) if reference else []
            return ds.bin_numeric(reference, edges), ds.bin_numeric(current, edges)
        cats = ds.categories(reference, self._s.drift_category_cap)
        return ds.bin_categorical(reference, cats), ds.bin_categorical(current, cats)

    def _needs_yesterday(self) -> bool:
        return "yesterday" in self._s.drift_reference

    def _load(self, first: int, last: int) -> dict[str, Series]:
        columns = ", ".join(f"sumMap({FEATURES[f][1]}) AS {f}" for f in self._features)
        sql = (f"SELECT toUnixTimestamp(window_start) AS w, model, sum(requests) AS requests, "
               f"sum(errors) AS errors, {columns} FROM request_windows "
               "WHERE window_start >= toDateTime({lo:UInt32}) AND window_start <= toDateTime({hi:UInt32}) "
               "AND window_seconds = {step:UInt32} GROUP BY w, model")
        result = self._ch.query(sql, parameters={"lo": max(first, 0), "hi": last, "step": self._step})
        out: dict[str, Series] = {}
        for row in result.result_rows:
            w, model, requests, errors, *hists = row
            by_feature = dict(zip(self._features, hists))
            if "error_type" in by_feature:  # successes are a category of their own
                by_feature["error_type"] = {**by_feature["error_type"], "none": requests - errors}
            out.setdefault(model, Series()).windows[int(w)] = by_feature
        return out



_DRIFT_COLUMNS = ("window_start", "model", "feature", "reference", "psi", "ks", "js", "n_ref", "n_cur",
                  "threshold", "decision")
