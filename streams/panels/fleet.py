"""The GPU, drift and alert dashboards (pure)."""

from __future__ import annotations

from fleetpulse.streams.panels.catalogue import Dashboard, Panel, Variable
from fleetpulse.streams.panels.requests import MODEL, NODE

GPU = Variable("gpu", "GPU", "SELECT DISTINCT gpu_uuid FROM gpu_windows WHERE $__timeFilter(window_start) "
                             "ORDER BY gpu_uuid")

_GPU_WINDOWS = ("FROM gpu_windows_for(interval_s = $__interval_s) WHERE $__timeFilter(window_start) "
                "AND node IN (${node:singlequote}) AND gpu_uuid IN (${gpu:singlequote})")
_EFFICIENCY = ("FROM gpu_efficiency WHERE $__timeFilter(window_start) AND node IN (${node:singlequote}) "
               "AND gpu_uuid IN (${gpu:singlequote})")


def _per_gpu(select: str) -> str:
    """A series per GPU, named node/index."""
    return (f"SELECT $__timeInterval(window_start) AS time, concat(node, '/', toString(gpu_index)) AS gpu, "
            f"{select} {_GPU_WINDOWS} GROUP BY time, gpu ORDER BY time, gpu")


GPUS = Dashboard(
    "gpus", "GPUs",
    "NVML rollups per GPU, the fleet's power, health events, and the work done per GPU-second and per kWh.",
    (NODE, GPU),
    (
        Panel("gpu_utilization", "Utilization", "timeseries", "percent", _per_gpu("avg(utilization_avg) AS utilization")),
        Panel("gpu_memory", "Memory used", "timeseries", "percentunit",
              _per_gpu("max(memory_used_ratio) AS memory_used")),
        Panel("gpu_power", "Power", "timeseries", "watt", _per_gpu("avg(power_avg) AS power")),
        Panel("gpu_power_fleet", "Fleet power", "timeseries", "watt",
              "SELECT time, sum(power) AS fleet_power FROM (SELECT $__timeInterval(window_start) AS time, gpu_uuid, "
              f"avg(power_avg) AS power {_GPU_WINDOWS} GROUP BY time, gpu_uuid) GROUP BY time ORDER BY time"),
        Panel("gpu_temperature", "Temperature (max)", "timeseries", "celsius",
              _per_gpu("max(temperature_max) AS temperature")),
        Panel("gpu_clock_sm", "SM clock", "timeseries", "hertz", _per_gpu("avg(clock_sm_avg) * 1e6 AS sm_clock")),
        Panel("gpu_throttled", "Windows with a throttle reason", "timeseries", "short",
              _per_gpu("countIf(throttle_reasons_any != 0) AS throttled_windows")),
        Panel("gpu_health", "ECC errors and XID events", "table", "short",
              "SELECT node, gpu_index, gpu_name, sum(ecc_volatile_increase) AS ecc_errors, max(xid_last) AS last_xid, "
              f"max(throttle_reasons_any) AS throttle_reasons {_GPU_WINDOWS} "
              "GROUP BY node, gpu_index, gpu_name ORDER BY ecc_errors DESC, node, gpu_index"),
        Panel("gpu_tokens_per_gpu_second", "Output tokens per GPU-second", "timeseries", "short",
              "SELECT $__timeInterval(window_start) AS time, avg(tokens_per_gpu_second) AS tokens_per_gpu_second "
              f"{_EFFICIENCY} GROUP BY time ORDER BY time"),
        Panel("gpu_tokens_per_kwh", "Output tokens per kWh", "timeseries", "short",
              "SELECT $__timeInterval(window_start) AS time, sum(output_tokens) / (sum(energy_joules) / 3600000) "
              f"AS tokens_per_kwh {_EFFICIENCY} AND energy_joules > 0 GROUP BY time ORDER BY time"),
    ),
)

_DRIFT = "FROM drift_stats WHERE $__timeFilter(window) AND model IN (${model:singlequote})"


def _drift(stat: str) -> str:
    return (f"SELECT $__timeInterval(window) AS time, model, feature, max({stat}) AS {stat} {_DRIFT} "
            "GROUP BY time, model, feature ORDER BY time, model, feature")


DRIFT = Dashboard(
    "drift", "Drift",
    "How far each feature's distribution has moved from its reference, and what was decided.",
    (MODEL,),
    (
        Panel("drift_psi", "PSI (worst window in each interval)", "timeseries", "short", _drift("psi")),
        Panel("drift_ks", "KS distance (numeric features)", "timeseries", "short", _drift("ks")),
        Panel("drift_js", "Jensen-Shannon distance", "timeseries", "short", _drift("js")),
        Panel("drift_decisions", "Decisions", "timeseries", "short",
              f"SELECT $__timeInterval(window) AS time, decision, count() AS evaluations {_DRIFT} "
              "GROUP BY time, decision ORDER BY time, decision"),
        Panel("drift_latest", "Latest decision per model and feature", "table", "short",
              "SELECT model, feature, argMax(decision, window) AS decision, argMax(psi, window) AS psi, "
              "argMax(ks, window) AS ks, argMax(js, window) AS js, max(window) AS evaluated "
              f"{_DRIFT} GROUP BY model, feature ORDER BY model, feature", width=24),
    ),
)

ALERTS = Dashboard(
    "alerts", "Alerts",
    "What fires now (as of the range's end), what fired and resolved, and the silences.",
    (),
    (
        Panel("alerts_firing", "Firing at the end of the range", "table", "short",
              "SELECT alert_name, severity, toString(labels) AS labels, starts_at, value, summary FROM (SELECT "
              "fingerprint, argMax(status, timestamp) AS status, argMax(alert_name, timestamp) AS alert_name, "
              "argMax(severity, timestamp) AS severity, argMax(labels, timestamp) AS labels, "
              "argMax(starts_at, timestamp) AS starts_at, argMax(value, timestamp) AS value, "
              "argMax(annotations['summary'], timestamp) AS summary FROM alerts WHERE timestamp <= $__toTime "
              "GROUP BY fingerprint) WHERE status = 'firing' ORDER BY starts_at DESC", width=24),
        Panel("alerts_transitions", "Alert events", "timeseries", "short",
              "SELECT $__timeInterval(timestamp) AS time, status, count() AS events FROM alerts "
              "WHERE $__timeFilter(timestamp) GROUP BY time, status ORDER BY time, status"),
        Panel("alerts_history", "History (newest 200)", "table", "short",
              "SELECT timestamp, alert_name, status, severity, toString(labels) AS labels, value FROM alerts "
              "WHERE $__timeFilter(timestamp) ORDER BY timestamp DESC LIMIT 200"),
        Panel("alerts_silences", "Silences overlapping the range", "table", "short",
              "SELECT id, toString(matchers) AS matchers, starts_at, ends_at, comment, "
              "if(ends_at > now64(3), 'active', 'expired') AS state FROM silences FINAL "
              "WHERE starts_at <= $__toTime AND ends_at >= $__fromTime ORDER BY ends_at DESC", width=24),
    ),
)
