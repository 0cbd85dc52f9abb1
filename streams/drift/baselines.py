"""Frozen drift baselines: ``fleetpulse drift baseline`` and /drift/baseline.

A baseline is a model's bins and counts per feature over a chosen range,
stored as a new version in drift_baselines; the evaluator compares against the
newest version when FLEETPULSE_DRIFT_REFERENCE says ``baseline``.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Iterable

import numpy as np

from fleetpulse import params as check
from fleetpulse.clickhouse import ClickHouse
from fleetpulse.errors import ConfigError, RequestError
from fleetpulse.settings import Settings
from fleetpulse.streams.drift import stats as ds
from fleetpulse.streams.drift.features import FEATURES
from fleetpulse.streams.windows.grid import utc

log = logging.getLogger("fleetpulse.drift")


@dataclasses.dataclass(frozen=True)
class Baseline:
    version: int
    edges: list[int]
    categories: list[str]
    counts: np.ndarray


def latest_baselines(ch: ClickHouse) -> dict[tuple[str, str], Baseline]:
    """The newest version of every (model, feature) baseline."""
    rows = ch.query("SELECT model, feature, argMax(version, version), argMax(edges, version), "
                    "argMax(categories, version), argMax(counts, version) FROM drift_baselines "
                    "GROUP BY model, feature").result_rows
    return {(m, f): Baseline(v, list(e), list(c), np.array(n, dtype=np.float64)) for m, f, v, e, c, n in rows}


def handle_baseline(ch: ClickHouse, reader: ClickHouse, settings: Settings, body: object) -> dict[str, int]:
    """A baseline request, as /drift/baseline and the CLI send it: every field checked."""
    body = check.body_object(body)
    model = check.text(body, "model", limit=200)
    start = check.number(body, "from", 0, 2**32 - 1)  # stored as DateTime: seconds since 1970 in 32 bits
    end = check.number(body, "to", 0, 2**32 - 1)
    if end <= start:
        raise RequestError(f"to ({end:.0f}) must be after from ({start:.0f})")
    return build_baseline(ch, reader, settings, model, start, end,
                          check.text_list(body, "features", list(FEATURES)))


def build_baseline(ch: ClickHouse, reader: ClickHouse, settings: Settings, model: str, start: float, end: float,
                   features: Iterable[str] | None = None) -> dict[str, int]:
    """Freeze the bins and counts of ``model`` over [start, end) as a new version, per feature.

    The reads run on ``reader``, the read-only session with the user-query
    limits, beside ingestion; only the one insert takes the writer's session."""
    features = list(features) if features else settings.drift_feature_names
    version = int(reader.query("SELECT max(version) FROM drift_baselines WHERE model = {m:String}",
                               parameters={"m": model}).result_rows[0][0] or 0) + 1
    columns = ", ".join(f"sumMap({FEATURES[f][1]})" for f in features)
    row = reader.query(f"SELECT sum(requests), sum(errors), {columns} FROM request_windows WHERE model = {{m:String}} "
                       "AND window_start >= toDateTime({lo:UInt32}) AND window_start < toDateTime({hi:UInt32})",
                       parameters={"m": model, "lo": int(start), "hi": int(end)}).result_rows[0]
    requests, errors, *hists = row
    if not requests:
        raise ConfigError(f"no stored windows for model {model!r} between {start:.0f} and {end:.0f}")
    rows, sizes = [], {}
    for feature, hist in zip(features, hists):
        kind, _ = FEATURES[feature]
        if feature == "error_type":
            hist = {**hist, "none": requests - errors}
        if kind == "numeric":
            edges = ds.numeric_edges(hist, settings.drift_bins)
            counts, cats = ds.bin_numeric(hist, edges), []
        else:
            edges, cats = [], ds.categories(hist, settings.drift_category_cap)
            counts = ds.bin_categorical(hist, cats)
        rows.append([model, feature, version, utc(int(start)), utc(int(end)), edges, cats, [int(c) for c in counts]])
        sizes[feature] = int(counts.sum())
    ch.insert("drift_baselines", rows, ("model", "feature", "version", "range_from", "range_to", "edges",
                                        "categories", "counts"), dedup_token=f"baseline:{model}:{version}")
    log.info("baseline v%d of %s from %d windows' data: %s", version, model, len(rows), sizes)
    return {"version": version, **sizes}
