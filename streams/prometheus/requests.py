"""Re-export request telemetry as Prometheus series, exactly.

Histograms of request duration, TTFT, TPOT and queue time use ``le`` edges
that are a subset of the sketch's bucket edges (2^(k/32) seconds), so a bucket
count here is the exact number of requests whose sketch bucket index is <= k:
PromQL over these series and SQL over the ClickHouse bucket maps see the same
counts. A request without a value (no TTFT, no queue time: NaN in the column)
is in none of that histogram's series, as it is in none of the map's buckets.
Counters add requests by status, errors by type, tokens (cache reads too) and
requests by output quality signal. Everything is
cumulative since the worker started (Prometheus handles the reset when a
worker restarts; several workers add up in ``sum()``).

Labels come from an allow-list (FLEETPULSE_METRIC_LABELS, among model and
node); each label keeps at most FLEETPULSE_METRIC_LABEL_CAP distinct values,
and later ones fold into ``__other__``, counted in
``fleetpulse_label_values_folded_total{label}``. Buckets carry the trace id of
their most recent request as an exemplar (shown with OpenMetrics).
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from typing import Iterable

import numpy as np
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar

from fleetpulse.errors import ConfigError
from fleetpulse.schemas.fields import OTHER
from fleetpulse.settings import METRIC_LABELS
from fleetpulse.streams.windows.aggregate import group_codes
from fleetpulse.streams.windows.columns import Coded, RequestColumns, Strings
from fleetpulse.streams.windows.sketch import BUCKETS_PER_OCTAVE, MAX_BUCKET, ZERO_BUCKET, bucket_indices

HISTOGRAMS = (
    ("gen_ai_server_request_duration_seconds", "duration", "Server-side request duration."),
    ("gen_ai_server_time_to_first_token_seconds", "ttft", "Time to first output token."),
    ("gen_ai_server_time_per_output_token_seconds", "tpot", "Time per output token after the first."),
    # No GenAI semantic convention names queue time: the name is ours, as the field is.
    ("fleetpulse_request_queue_time_seconds", "queue_time", "Time queued before scheduling (fleetpulse.queue_time)."),
)


def le_indices(seconds: Iterable[float]) -> list[int]:
    """Snap each edge to the nearest sketch edge 2^(k/32), as bucket index k."""
    out = sorted({round(math.log2(s) * BUCKETS_PER_OCTAVE) for s in seconds if s > 0})
    if not out:
        raise ConfigError("FLEETPULSE_HISTOGRAM_BUCKETS: give at least one positive edge in seconds")
    return out


def le_text(index: int) -> str:
    return repr(2.0 ** (index / BUCKETS_PER_OCTAVE))


#: The quality signals counted per label set (docs/quality.md), in export order.
SIGNALS = ("analysed", "refusal", "empty", "format_checked", "format_failure", "truncation", "content_filter")


def signals(cols: RequestColumns) -> list[tuple[str, np.ndarray]]:
    """(signal, bool mask over the batch) of each of SIGNALS: numpy, Python per distinct finish reason."""
    def reason(name: str) -> np.ndarray:
        return np.array([v == name for v in cols.finish_reason.values], dtype=bool)[cols.finish_reason.codes]

    masks = (~np.isnan(cols.refusal), cols.refusal == 1, cols.empty == 1, ~np.isnan(cols.format_ok),
             cols.format_ok == 0, reason("length"), reason("content_filter"))
    return list(zip(SIGNALS, masks))


class LabelCap:
    """At most ``cap`` values per label; the first ones seen keep their names."""

    def __init__(self, cap: int):
        self.cap = cap
        self._seen: dict[str, set[str]] = defaultdict(set)
        self.folded: dict[str, int] = defaultdict(int)

    def value(self, label: str, value: str, events: int = 1) -> str:
        """The exported value; ``events`` requests carry it (counted when folded)."""
        seen = self._seen[label]
        if value in seen:
            return value
        if len(seen) < self.cap:
            seen.add(value)
            return value
        self.folded[label] += events
        return OTHER

    def column(self, label: str, column: Coded, rows: np.ndarray | None = None) -> Coded:
        """A categorical column with the cap applied once per distinct value (only
        ``rows``, a bool mask, when given)."""
        codes = column.codes if rows is None else column.codes[rows]
        events = np.bincount(codes, minlength=len(column.values)).tolist()
        return Coded.of_codes(codes, [v if n == 0 and rows is not None else self.value(label, v, n)
                                      for v, n in zip(column.values, events)])


class _Rows:
    """Numbers per label set, one row each, in arrays that grow by half.

    One dict maps a label set to its row; everything else is numpy: no Python
    object per label set and bucket (a label set costs a few hundred bytes, and
    there can be FLEETPULSE_METRIC_LABEL_CAP ** len(labels) of them)."""

    def __init__(self) -> None:
        self.index: dict[tuple, int] = {}
        self.keys: list[tuple] = []
        self._arrays: list[tuple[object, str]] = []  # (owner, attribute) of every per-row array
        self.capacity = 0

    def array(self, owner: object, name: str, shape: tuple[int, ...] = (), dtype: object = np.float64) -> None:
        setattr(owner, name, np.zeros((self.capacity, *shape), dtype=dtype) if dtype is not object
                else np.full((self.capacity, *shape), None, dtype=object))
        self._arrays.append((owner, name))

    def rows(self, keys: list[tuple]) -> np.ndarray:
        """The row of each of ``keys``, adding the new ones."""
        out = np.empty(len(keys), dtype=np.int64)
        for g, key in enumerate(keys):
            row = self.index.get(key)
            if row is None:
                row = self.index[key] = len(self.keys)
                self.keys.append(key)
            out[g] = row
        if len(self.keys) > self.capacity:
            self._grow(max(len(self.keys), self.capacity + self.capacity // 2, 16))
        return out

    def _grow(self, capacity: int) -> None:
        for owner, name in self._arrays:
            old = getattr(owner, name)
            new = (np.zeros((capacity, *old.shape[1:]), dtype=old.dtype) if old.dtype != object
                   else np.full((capacity, *old.shape[1:]), None, dtype=object))
            new[:len(old)] = old
            setattr(owner, name, new)
        self.capacity = capacity


class _Histogram:
    """Bucket counts, sums and the newest request of each bucket (its exemplar), per row."""

    def __init__(self, rows: _Rows, n_buckets: int):
        self.counts: np.ndarray
        self.sums: np.ndarray
        self.seen: np.ndarray  # a row has series once one of its requests had a value
        self.exemplar_value: np.ndarray
        self.exemplar_time: np.ndarray
        self.exemplar_trace: np.ndarray  # the trace id (str), None where the bucket has no request yet
        rows.array(self, "counts", (n_buckets,), np.int64)
        rows.array(self, "sums")
        rows.array(self, "seen", (), bool)
        rows.array(self, "exemplar_value", (n_buckets,))
        rows.array(self, "exemplar_time", (n_buckets,))
        rows.array(self, "exemplar_trace", (n_buckets,), object)


class RequestExporter(Collector):
    def __init__(self, labels: list[str], cap: int, le: list[int]):
        unknown = [label for label in labels if label not in METRIC_LABELS]
        if unknown:  # load_settings refuses these already: a programming error here
            raise ValueError(f"metric labels {unknown} not in {METRIC_LABELS}")
        self._labels = labels
        self._cap = LabelCap(cap)
        self._le = np.asarray(le, dtype=np.int64)
        # The le bucket of every sketch index (int16), looked up instead of
        # searched per event: le bucket j holds indices in (le[j-1], le[j]].
        self._slot = np.searchsorted(self._le, np.arange(ZERO_BUCKET, MAX_BUCKET + 1), side="left")
        self._lock = threading.Lock()
        self._rows = _Rows()
        self._hist = {column: _Histogram(self._rows, len(le) + 1) for _, column, _ in HISTOGRAMS}
        self._requests: np.ndarray  # per row: ok, error
        self._tokens: np.ndarray  # per row: input, output, cache read
        self._quality: np.ndarray  # per row: each of SIGNALS
        self._rows.array(self, "_requests", (2,))
        self._rows.array(self, "_tokens", (3,))
        self._rows.array(self, "_quality", (len(SIGNALS),))
        self._errors: dict[tuple, float] = defaultdict(float)  # (*labels, error type): few, and only where errors were

    def observe(self, cols: RequestColumns) -> None:
        """Add one durable batch: numpy over the batch, Python per label set."""
        if len(cols) == 0:
            return
        with self._lock:
            group, lookup = self._label_groups(cols)
            rows = self._rows.rows(lookup)
            for column, hist in self._hist.items():
                self._observe_histogram(hist, getattr(cols, column), group, rows, cols.trace_id, cols.timestamp)
            n = len(lookup)
            requests = np.bincount(group, minlength=n)
            errors = np.bincount(group[cols.is_error], minlength=n)
            self._requests[rows] += np.stack([requests - errors, errors], axis=1)
            self._tokens[rows] += np.stack([np.bincount(group, weights=cols.input_tokens, minlength=n),
                                            np.bincount(group, weights=cols.output_tokens, minlength=n),
                                            np.bincount(group, weights=cols.cache_read_tokens, minlength=n)], axis=1)
            self._quality[rows] += np.stack([np.bincount(group[mask], minlength=n) for _, mask in signals(cols)],
                                            axis=1)
            if cols.is_error.any():
                error_type = self._cap.column("error_type", cols.error_type, cols.is_error)
                pairs, counts = np.unique(group[cols.is_error] * len(error_type.values) + error_type.codes,
                                          return_counts=True)
                for pair, count in zip(pairs.tolist(), counts.tolist()):
                    g, t = divmod(pair, len(error_type.values))
                    self._errors[(*lookup[g], error_type.values[t])] += count

    def _label_groups(self, cols: RequestColumns) -> tuple[np.ndarray, list[tuple]]:
        """Each event's label set, as a group number, and the label values of each
        group. The cap is applied per distinct value, not per event."""
        columns = {"model": cols.model, "node": cols.node}
        capped = [self._cap.column(label, columns[label]) for label in self._labels]
        if not capped:
            return np.zeros(len(cols), dtype=np.int64), [()]
        group, first = group_codes(*(c.codes for c in capped))
        lookup = [tuple(c.values[c.codes[i]] for c in capped) for i in first.tolist()]
        return group, lookup

    def _observe_histogram(self, hist: _Histogram, values: np.ndarray, group: np.ndarray, rows: np.ndarray,
                           trace_ids: Strings, timestamps: np.ndarray) -> None:
        present = np.flatnonzero(~np.isnan(values))
        if present.size == 0:
            return
        # Bucket by the sketch index, exactly as ClickHouse's maps do; the last one is +Inf.
        slot = self._slot[bucket_indices(values[present]).astype(np.int64) - ZERO_BUCKET]
        n_slots = len(self._le) + 1
        combined = group[present] * n_slots + slot
        counts = np.bincount(combined, minlength=len(rows) * n_slots).reshape(len(rows), n_slots)
        hist.counts[rows] += counts
        hist.sums[rows] += np.bincount(group[present], weights=values[present], minlength=len(rows))
        hist.seen[rows] |= counts.any(axis=1)
        # The newest request of each (labels, bucket) becomes its exemplar: the
        # largest position per pair, scattered (no sort of the batch).
        last = np.full(len(rows) * n_slots, -1, dtype=np.int64)
        np.maximum.at(last, combined, np.arange(len(combined)))
        newest = last[last >= 0]  # positions among the present values
        at = present[newest]
        where = (rows[group[at]], slot[newest])
        hist.exemplar_value[where] = values[at]
        hist.exemplar_time[where] = timestamps[at]
        traces = np.empty(len(at), dtype=object)
        traces[:] = trace_ids.at(at)
        hist.exemplar_trace[where] = traces

    def describe(self):
        return []

    def collect(self):
        with self._lock:
            yield from self._histograms()
            keys = self._rows.keys
            requests = self._requests[:len(keys)].tolist()
            tokens = self._tokens[:len(keys)].tolist()
            quality = self._quality[:len(keys)].tolist()
            yield self._counter("gen_ai_server_requests", "Requests by status (ok or error).",
                                [*self._labels, "status"],
                                (((*key, status), value) for key, row in zip(keys, requests)
                                 for status, value in zip(("ok", "error"), row)))
            yield self._counter("gen_ai_server_errors", "Failed requests by error type (error.type).",
                                [*self._labels, "error_type"], self._errors.items())
            for (name, doc), column in zip((
                    ("gen_ai_usage_input_tokens", "Prompt tokens."),
                    ("gen_ai_usage_output_tokens", "Generated tokens."),
                    ("gen_ai_usage_cache_read_input_tokens",
                     "Prompt tokens served from a prompt cache (gen_ai.usage.cache_read.input_tokens).")), range(3)):
                yield self._counter(name, doc, self._labels, ((key, row[column]) for key, row in zip(keys, tokens)))
            yield self._counter("fleetpulse_output_quality", "Requests by output quality signal (docs/quality.md): "
                                "analysed, refusal, empty, format_checked, format_failure (of the analysed), "
                                "truncation, content_filter (finish reasons, of all).",
                                [*self._labels, "signal"],
                                (((*key, signal), value) for key, row in zip(keys, quality)
                                 for signal, value in zip(SIGNALS, row)))
            folded = CounterMetricFamily("fleetpulse_label_values_folded",
                                         "Label values past FLEETPULSE_METRIC_LABEL_CAP, exported as __other__.",
                                         labels=["label"])
            for label in (*self._labels, "error_type"):
                folded.add_metric([label], self._cap.folded.get(label, 0))
            yield folded

    def _histograms(self):
        edges = [le_text(i) for i in self._le.tolist()] + ["+Inf"]
        keys = self._rows.keys
        for name, column, doc in HISTOGRAMS:
            hist = self._hist[column]
            family = HistogramMetricFamily(name, doc, labels=self._labels)
            for row in np.flatnonzero(hist.seen[:len(keys)]).tolist():
                cumulative = np.cumsum(hist.counts[row]).tolist()
                traces = hist.exemplar_trace[row].tolist()
                values, times = hist.exemplar_value[row].tolist(), hist.exemplar_time[row].tolist()
                buckets = [(le, float(c), Exemplar({"trace_id": trace}, value, at)) if trace is not None
                           else (le, float(c))
                           for le, c, trace, value, at in zip(edges, cumulative, traces, values, times)]
                family.add_metric(list(keys[row]), buckets, float(hist.sums[row]))
            yield family

    @staticmethod
    def _counter(name: str, doc: str, labels: list[str], values: Iterable[tuple[tuple, float]]) -> CounterMetricFamily:
        family = CounterMetricFamily(name, doc, labels=labels)
        for key, value in values:
            family.add_metric(list(key), value)
        return family
