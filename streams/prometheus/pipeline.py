"""Every metric the worker exports, created in one place on one registry.

The registry built here is the one ``/metrics`` serves. Units follow the
Prometheus conventions: ``_total`` counters, ``_seconds`` durations.
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class LagCollector(Collector):
    """Consumer lag per partition, read from the consumer at scrape time, so the
    number is as fresh as the scrape and costs nothing between scrapes."""

    def __init__(self, read_lag: Callable[[], Mapping[tuple[str, int], int]]):
        self._read_lag = read_lag

    def describe(self) -> Iterable[GaugeMetricFamily]:
        yield self._family()

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = self._family()
        for (topic, partition), lag in sorted(self._read_lag().items()):
            family.add_metric([topic, str(partition)], lag)
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "fleetpulse_consumer_lag_messages",
            "Messages in the partition not yet processed by this worker.",
            labels=["topic", "partition"],
        )


class PipelineMetrics:
    """The worker's own metrics."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.messages_in = Counter("fleetpulse_messages_in", "Kafka messages consumed.", ["topic"], registry=r)
        self.events_in = Counter("fleetpulse_events_in", "Valid events decoded.", ["topic"], registry=r)
        self.events_invalid = Counter(
            "fleetpulse_events_invalid", "Invalid messages or events sent to the dead-letter topic.",
            ["topic", "field"], registry=r)
        self.events_dropped = Counter(
            "fleetpulse_events_dropped",
            "Invalid inputs the dead-letter topic refused permanently (logged, then skipped).",
            ["topic"], registry=r)
        self.batches = Counter("fleetpulse_batches", "Batches processed.", ["topic"], registry=r)
        self.rows_written = Counter(
            "fleetpulse_rows_written", "Rows written to ClickHouse.", ["table"], registry=r)
        self.flush_seconds = Histogram(
            "fleetpulse_flush_duration_seconds", "Time to make one batch durable (dead letters + ClickHouse).",
            ["topic"], registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.messages_skipped = Counter(
            "fleetpulse_messages_skipped", "Messages re-read after a restart or rebalance that ClickHouse "
            "already had (skipped by offset, not counted twice).", ["topic"], registry=r)
        self.late_events = Counter(
            "fleetpulse_late_events", "Events that arrived after the watermark passed their window; "
            "stored as corrections (late = 1).", ["topic"], registry=r)
        self.event_time_high_water = Gauge(
            "fleetpulse_event_time_high_water_seconds", "Newest event time written, per partition "
            "(the watermark is this minus the allowed lateness).", ["topic", "partition"], registry=r)
        self.paused = Gauge(
            "fleetpulse_consumer_paused", "1 while consumption is paused because a sink is unavailable.",
            registry=r)
        self.rollup_repairs = Counter(
            "fleetpulse_rollup_repairs", "Rollups filled in from the base table after a crash.", registry=r)
        self.drift_psi = Gauge("fleetpulse_drift_psi", "Population stability index of the last evaluated window "
                               "against its reference.", ["model", "feature"], registry=r)
        self.drift_ks = Gauge("fleetpulse_drift_ks", "Kolmogorov-Smirnov D of the binned CDFs (numeric features).",
                              ["model", "feature"], registry=r)
        self.drift_js = Gauge("fleetpulse_drift_js", "Jensen-Shannon distance, base 2.", ["model", "feature"], registry=r)
        self.drift_evaluations = Counter("fleetpulse_drift_evaluations", "Drift evaluations by decision.",
                                         ["decision"], registry=r)
        self.webhook_failures = Counter("fleetpulse_webhook_failures", "Alert webhook posts that failed "
                                        "after retries.", registry=r)
        self.gpu_gauges = {
            name: Gauge(f"fleetpulse_gpu_{name}", doc, ["node", "gpu"], registry=r)
            for name, doc in (
                ("utilization_percent", "GPU utilization, average of the latest closed window (DCGM_FI_DEV_GPU_UTIL)."),
                ("memory_used_ratio", "Largest share of GPU memory used in the latest closed window."),
                ("temperature_celsius", "Highest GPU temperature in the latest closed window (DCGM_FI_DEV_GPU_TEMP)."),
                ("power_watts", "Average power draw in the latest closed window (DCGM_FI_DEV_POWER_USAGE)."),
                ("energy_joules", "Energy used in the latest closed window."),
            )
        }
        self.sink_retries = Counter(
            "fleetpulse_sink_retries", "Writes retried because a sink was unavailable.", ["sink"], registry=r)

    def record_gpu_window(self, node: str, gpu: str, values: dict[str, float | None]) -> None:
        """The latest closed GPU window's averages and maxima, per (node, GPU)."""
        for name, value in values.items():
            if value is not None and value == value:
                self.gpu_gauges[name].labels(node, gpu).set(value)

    def record_drift(self, model: str, feature: str, verdict) -> None:
        self.drift_psi.labels(model, feature).set(verdict.psi)
        self.drift_ks.labels(model, feature).set(verdict.ks)
        self.drift_js.labels(model, feature).set(verdict.js)
        self.drift_evaluations.labels(verdict.decision).inc()

    def expose(self, topic: str) -> None:
        """Create every labelled series at zero, so a scrape shows 0 instead of
        nothing (absent and zero look the same to a careless alert)."""
        for counter in (self.messages_in, self.messages_skipped, self.events_in, self.late_events,
                        self.events_dropped, self.batches):
            counter.labels(topic)
        for sink in ("clickhouse", "deadletter"):
            self.sink_retries.labels(sink)
        self.rows_written.labels("request_windows")

    def watch_lag(self, read_lag: Callable[[], Mapping[tuple[str, int], int]]) -> None:
        self.registry.register(LagCollector(read_lag))
