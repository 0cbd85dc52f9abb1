"""The pipeline-health dashboard, from Prometheus (pure).

``$__rate_interval`` is Grafana's; the pages replace it the way Grafana does
(see streams/panels/macros.py: :func:`rate_interval`).
"""

from __future__ import annotations

from fleetpulse.streams.panels.catalogue import Dashboard, Panel

HEALTH = Dashboard(
    "pipeline", "Pipeline health",
    "The workers themselves, from Prometheus: lag, throughput, bad input, lateness, flushes, retries, watermark.",
    (),
    (
        Panel("health_consumer_lag", "Consumer lag (messages)", "timeseries", "short",
              promql="sum by (topic) (fleetpulse_consumer_lag_messages)", legend="{{topic}}"),
        Panel("health_events_in", "Events in/s", "timeseries", "short",
              promql="sum by (topic) (rate(fleetpulse_events_in_total[$__rate_interval]))", legend="{{topic}}"),
        Panel("health_dead_letters", "Dead letters/s by field", "timeseries", "short",
              promql="sum by (field) (rate(fleetpulse_events_invalid_total[$__rate_interval]))", legend="{{field}}"),
        Panel("health_late_events", "Late events/s", "timeseries", "short",
              promql="sum by (topic) (rate(fleetpulse_late_events_total[$__rate_interval]))", legend="{{topic}}"),
        Panel("health_flush_time", "Flush time p99", "timeseries", "s",
              promql="histogram_quantile(0.99, sum by (le) (rate(fleetpulse_flush_duration_seconds_bucket"
                     "[$__rate_interval])))", legend="p99"),
        Panel("health_sink_retries", "Sink retries/s", "timeseries", "short",
              promql="sum by (sink) (rate(fleetpulse_sink_retries_total[$__rate_interval]))", legend="{{sink}}"),
        Panel("health_watermark_age", "Fleet watermark behind now", "timeseries", "s",
              promql="time() - max(fleetpulse_fleet_watermark_seconds)", legend="watermark age"),
        Panel("health_queue_time", "Queue time p99 (Prometheus histogram)", "timeseries", "s",
              promql="histogram_quantile(0.99, sum by (le, model) (rate("
                     "fleetpulse_request_queue_time_seconds_bucket[$__rate_interval])))", legend="{{model}}"),
    ),
)
