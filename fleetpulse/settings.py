"""The one settings object, read from ``FLEETPULSE_*`` environment variables.

Nothing is read at import time: call :func:`load_settings` (the CLI does, once)
and pass the result down through constructors.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import math
import os
import urllib.parse
from pathlib import Path
from typing import Callable, Mapping

from fleetpulse.errors import ConfigError
from fleetpulse.streams.drift.features import parse_features, parse_references

log = logging.getLogger("fleetpulse.settings")


class Secret(str):
    """A string that never shows itself in reprs, logs or tracebacks."""

    def __repr__(self) -> str:
        return "Secret('***')" if self else "Secret('')"

    def reveal(self) -> str:
        return str.__str__(self)

    __str__ = __repr__


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every knob fleetpulse has. The README's settings table mirrors this class."""

    kafka_bootstrap: str = ""  # empty: use the local broker on 127.0.0.1:kafka_port
    kafka_port: int = 9092
    kafka_version: str = "3.9.1"
    topic_prefix: str = "fleetpulse."
    requests_partitions: int = 6
    requests_retention_hours: int = 168
    consumer_group: str = "fleetpulse"
    worker_id: str = ""  # Kafka static membership: a restart with the same id skips the rebalance
    clickhouse_url: str = "chdb://./.fleetpulse/chdb"
    clickhouse_database: str = "fleetpulse"
    clickhouse_user: str = "default"
    clickhouse_password: Secret = Secret("")
    clickhouse_query_user: str = ""  # server only: the read-only user /query runs as (empty: clickhouse_user)
    clickhouse_query_password: Secret = Secret("")
    store_raw_events: bool = False
    raw_events_ttl_days: int = 3
    http_host: str = "127.0.0.1"
    http_port: int = 6066
    http_token: Secret = Secret("")  # bearer token for /query, /silences, /drift/baseline; required beyond loopback
    query_timeout_seconds: int = 30
    query_max_memory_bytes: int = 2 * 1024**3
    health_stall_seconds: int = 60
    window_seconds: int = 10
    allowed_lateness_seconds: int = 30
    max_clock_skew_seconds: int = 300  # events further ahead of the worker's clock are dead-lettered
    idle_partition_seconds: int = 60  # a partition with nothing new for this long stops holding windows open
    windows_ttl_days: int = 30
    rollup_1m_ttl_days: int = 180
    rollup_1h_ttl_days: int = 730
    session_timeout_seconds: int = 10
    metric_labels: str = "model,node"
    metric_label_cap: int = 250
    tenant_top_k: int = 20  # tenants on /metrics per window; the rest are __other__
    tenant_counters: int = 200  # Space-Saving counters per window and worker (at least top K)
    tenant_baseline_windows: int = 30  # trailing windows whose median TenantTrafficSpike compares with
    histogram_buckets: str = "0.00390625,0.0078125,0.015625,0.03125,0.0625,0.125,0.25,0.5,1,2,4,8,16,32,64"
    alert_rules: str = ""  # a YAML file; empty: the shipped defaults (streams/alerting/default_rules.yml)
    alertmanager_url: str = ""
    prometheus_url: str = ""  # the Prometheus that scrapes the workers: the pages' pipeline-health panels read it
    prices: str = ""  # a YAML/JSON price table (fleetpulse/prices.py); empty: the price tables stay as they are
    alert_webhook_url: str = ""  # every alert event, as a JSON array (FLEETPULSE_DRIFT_WEBHOOK_URL before)
    drift_features: str = "input_tokens,output_tokens,latency,ttft,tpot,queue_time,operation,finish_reason,error_type,output_outcome"
    drift_reference: str = "previous"  # previous | yesterday | baseline, or per model: "previous,MODEL=baseline"
    drift_window_minutes: int = 1
    drift_bins: int = 10
    drift_category_cap: int = 20
    drift_min_count: int = 200
    drift_alpha: float = 0.0001
    batch_max_messages: int = 50_000
    batch_max_wait_seconds: float = 0.5
    batch_max_bytes: int = 16 * 1024 * 1024  # the decoding memory of one run (docs/architecture.md, "Bounded by bytes")
    max_message_bytes: int = 524288
    home: Path = Path(".fleetpulse")
    cache_dir: Path = Path("~/.cache/fleetpulse")
    log_level: str = "info"

    @property
    def uses_local_kafka(self) -> bool:
        return not self.kafka_bootstrap

    @property
    def bootstrap(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def uses_chdb(self) -> bool:
        return self.clickhouse_url.startswith("chdb://")

    def to_environ(self) -> dict[str, str]:
        """The FLEETPULSE_* variables that rebuild these settings in a child process."""
        env = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, Secret):
                value = value.reveal()
            elif isinstance(value, bool):
                value = "true" if value else "false"
            env[f"FLEETPULSE_{field.name.upper()}"] = str(value)
        return env

    @property
    def metric_label_names(self) -> list[str]:
        """FLEETPULSE_METRIC_LABELS as a list (checked by load_settings)."""
        return split_list(self.metric_labels)

    @property
    def drift_feature_names(self) -> list[str]:
        """FLEETPULSE_DRIFT_FEATURES as a list (checked by load_settings)."""
        return parse_features(self.drift_features)

    @property
    def drift_reference_of(self) -> Callable[[str], str]:
        """FLEETPULSE_DRIFT_REFERENCE as model -> reference mode (checked by load_settings)."""
        return parse_references(self.drift_reference)

    @property
    def histogram_edge_seconds(self) -> list[float]:
        """FLEETPULSE_HISTOGRAM_BUCKETS as seconds (checked by load_settings)."""
        return histogram_edges(self.histogram_buckets)

    def topic(self, name: str) -> str:
        """Full topic name: ``requests`` -> ``fleetpulse.requests``."""
        return f"{self.topic_prefix}{name}"


#: The request labels /metrics may carry: each a bounded set (models, nodes).
METRIC_LABELS = ("model", "node")


def split_list(text: str) -> list[str]:
    """A comma-separated setting as its items, blanks dropped."""
    return [item.strip() for item in text.split(",") if item.strip()]


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _convert(name: str, raw: str, kind: type) -> object:
    env = f"FLEETPULSE_{name.upper()}"
    try:
        if kind is bool:
            low = raw.strip().lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError("expected true/false")
        if kind is Path:
            return Path(raw).expanduser()
        if kind is Secret:
            return Secret(raw)
        value = kind(raw)
        if kind is float and not math.isfinite(value):
            raise ValueError("expected a finite number")
        return value
    except ValueError as exc:
        raise ConfigError(f"{env}={raw!r} is not a valid {kind.__name__}: {exc}") from exc


_KINDS = {"str": str, "int": int, "float": float, "bool": bool, "Path": Path, "Secret": Secret}
#: Old variable names still read, with a warning: old name -> the setting that replaced it.
_RENAMED = {"FLEETPULSE_DRIFT_WEBHOOK_URL": "alert_webhook_url"}


def _renamed(environ: Mapping[str, str]) -> dict[str, str]:
    """Values set under an old name, under the new one, so existing
    deployments keep working; a warning names the variable to use instead."""
    values = {}
    for old, name in _RENAMED.items():
        new = f"FLEETPULSE_{name.upper()}"
        if old not in environ:
            continue
        if new in environ:
            log.warning("%s is deprecated and ignored because %s is set; remove it", old, new)
        else:
            log.warning("%s is deprecated; use %s (it receives every alert, not only drift)", old, new)
            values[new] = environ[old]
    return values


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build :class:`Settings` from ``FLEETPULSE_*`` variables, then ``overrides``."""
    environ = os.environ if environ is None else environ
    environ = {**environ, **_renamed(environ)}
    values: dict[str, object] = {}
    for field in dataclasses.fields(Settings):
        env = f"FLEETPULSE_{field.name.upper()}"
        if env in environ:
            values[field.name] = _convert(field.name, environ[env], _KINDS[str(field.type)])
    values.update(overrides)
    for name in ("home", "cache_dir"):
        if name in values:
            values[name] = Path(values[name]).expanduser()
    settings = Settings(**values)
    if "cache_dir" not in values:
        settings = dataclasses.replace(settings, cache_dir=settings.cache_dir.expanduser())
    _check(settings)
    return settings


def _check(s: Settings) -> None:
    positive = ("kafka_port", "requests_partitions", "http_port", "window_seconds", "batch_max_messages",
                "max_message_bytes", "raw_events_ttl_days", "requests_retention_hours", "batch_max_wait_seconds",
                "windows_ttl_days", "rollup_1m_ttl_days", "rollup_1h_ttl_days", "session_timeout_seconds",
                "drift_window_minutes", "drift_bins", "drift_category_cap", "drift_min_count", "drift_alpha",
                "metric_label_cap", "batch_max_bytes", "query_timeout_seconds", "query_max_memory_bytes",
                "health_stall_seconds", "max_clock_skew_seconds", "idle_partition_seconds", "tenant_top_k",
                "tenant_counters", "tenant_baseline_windows")
    for name in positive:
        if getattr(s, name) <= 0:
            raise ConfigError(f"FLEETPULSE_{name.upper()} must be > 0, got {getattr(s, name)}")
    if not (s.clickhouse_url.startswith(("chdb://", "http://", "https://"))):
        raise ConfigError(f"FLEETPULSE_CLICKHOUSE_URL={safe_url(s.clickhouse_url)!r}: expected chdb://PATH, "
                          "http://HOST:PORT or https://HOST:PORT")
    for name in ("kafka_port", "http_port"):
        if not 0 < getattr(s, name) < 65536:
            raise ConfigError(f"FLEETPULSE_{name.upper()}={getattr(s, name)} is not a TCP port (1-65535)")
    if s.clickhouse_url.startswith("chdb://") and not s.clickhouse_url[len("chdb://"):].strip():
        raise ConfigError("FLEETPULSE_CLICKHOUSE_URL=chdb:// needs a path, e.g. chdb://./.fleetpulse/chdb")
    if s.clickhouse_url.startswith(("http://", "https://")) and not _has_host_and_port(s.clickhouse_url):
        raise ConfigError(f"FLEETPULSE_CLICKHOUSE_URL={safe_url(s.clickhouse_url)!r} needs a host and a numeric port, "
                          "e.g. http://localhost:8123")
    if not s.topic_prefix or not all(c.isalnum() or c in "._-" for c in s.topic_prefix):
        raise ConfigError(f"FLEETPULSE_TOPIC_PREFIX={s.topic_prefix!r}: use letters, digits, '.', '_' or '-'")
    if not s.drift_alpha < 0.5:
        raise ConfigError(f"FLEETPULSE_DRIFT_ALPHA={s.drift_alpha}: a false-alarm probability, e.g. 0.0001")
    if (s.drift_window_minutes * 60) % s.window_seconds:
        raise ConfigError("FLEETPULSE_DRIFT_WINDOW_MINUTES must span a whole number of windows "
                          f"(FLEETPULSE_WINDOW_SECONDS={s.window_seconds})")
    if s.allowed_lateness_seconds < 0:
        raise ConfigError(f"FLEETPULSE_ALLOWED_LATENESS_SECONDS must be >= 0, got {s.allowed_lateness_seconds}")
    if s.log_level not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"FLEETPULSE_LOG_LEVEL={s.log_level!r}: use debug, info, warning or error")
    if not s.clickhouse_database.replace("_", "").isalnum():
        raise ConfigError(f"FLEETPULSE_CLICKHOUSE_DATABASE={s.clickhouse_database!r}: use letters, digits and _ only")
    for name in ("alertmanager_url", "alert_webhook_url", "prometheus_url"):
        url = getattr(s, name)
        if url and not (url.startswith(("http://", "https://")) and _has_host_and_port(url)):
            raise ConfigError(f"FLEETPULSE_{name.upper()}={safe_url(url)!r}: expected http(s)://HOST[:PORT]/PATH")
    histogram_edges(s.histogram_buckets)
    parse_features(s.drift_features)  # here, so that a typo stops the worker at start-up
    parse_references(s.drift_reference)
    unknown = [label for label in s.metric_label_names if label not in METRIC_LABELS]
    if unknown:
        raise ConfigError(f"FLEETPULSE_METRIC_LABELS={s.metric_labels!r}: {unknown} not allowed; choose from "
                          f"{', '.join(METRIC_LABELS)}")
    if s.home.exists() and not s.home.is_dir():
        raise ConfigError(f"FLEETPULSE_HOME={str(s.home)!r} is a file, not a directory")


def _has_host_and_port(url: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(url)
        return bool(parts.hostname) and (parts.port is None or parts.port > 0)
    except ValueError:  # a port that is not a number
        return False


def histogram_edges(text: str) -> list[float]:
    """FLEETPULSE_HISTOGRAM_BUCKETS as seconds: finite, positive, increasing."""
    env = "FLEETPULSE_HISTOGRAM_BUCKETS"
    try:
        edges = [float(edge) for edge in text.split(",")]
    except ValueError:
        raise ConfigError(f"{env}={text!r}: expected comma-separated seconds, e.g. 0.1,0.5,1,5") from None
    if not all(math.isfinite(e) and e > 0 for e in edges):
        raise ConfigError(f"{env}={text!r}: every edge must be a finite number of seconds > 0")
    if any(b <= a for a, b in zip(edges, edges[1:])):
        raise ConfigError(f"{env}={text!r}: edges must increase from left to right")
    return edges


def safe_url(url: str) -> str:
    """A URL fit for logs and errors: scheme, host and port, never ``user:password@``,
    a path or a query (either may carry a token)."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparsable URL>"
    if not parts.scheme or not parts.hostname:
        return "<URL without a host>" if "@" in url else url
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}{port}"


_WILDCARDS = {"0.0.0.0", "::", ""}


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the web server on this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    return host.strip("[]") in _WILDCARDS
