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

#: fleetpulse's own series, as Prometheus stores them.
_OURS = '{__name__=~"fleetpulse_.+|gen_ai_.+"}'


def _values_of(label: str) -> str:
    return (f'label_replace(count(group by ({label}) ({{__name__=~"fleetpulse_.+|gen_ai_.+", {label}!=""}})), '
            f'"label", "{label}", "", "")')


CARDINALITY = Dashboard(
    "cardinality", "Cardinality",
    "How many series the workers make, per metric and label, what the label cap folds into __other__, and the "
    "series Prometheus creates per scrape (churn). `fleetpulse cardinality` reports the same, with advice.",
    (),
    (
        Panel("cardinality_by_metric", "Series per metric (top 10)", "timeseries", "short",
              promql=f"topk(10, count by (__name__) ({_OURS}))", legend="{{__name__}}"),
        Panel("cardinality_label_values", "Distinct values per label", "timeseries", "short",
              promql=" or ".join(_values_of(label) for label in ("model", "node", "error_type", "topic")),
              legend="{{label}}"),
        Panel("cardinality_folded", "Requests whose label value was folded into __other__, per second",
              "timeseries", "short",
              promql="sum by (label) (rate(fleetpulse_label_values_folded_total[$__rate_interval]))",
              legend="{{label}}"),
        Panel("cardinality_live_series", "Live series per scrape target", "timeseries", "short",
              promql="sum by (job, instance) (scrape_samples_post_metric_relabeling)",
              legend="{{job}} {{instance}}"),
        Panel("cardinality_created", "New series in each rate window (churn)", "timeseries", "short",
              promql="sum by (job) (sum_over_time(scrape_series_added[$__rate_interval]))", legend="{{job}}"),
    ),
)
