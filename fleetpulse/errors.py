"""The one root exception of fleetpulse, and its tree.

    FleetpulseError                 anything fleetpulse raises on purpose
    ├── ConfigError                 a FLEETPULSE_* setting is missing or malformed
    ├── ValidationError             an event or message breaks the wire schema
    ├── KafkaUnavailable            the broker cannot be reached or refused us
    ├── LocalKafkaError             the local broker could not be fetched/started/stopped
    ├── ClickHouseUnavailable       ClickHouse cannot be reached (retryable: backpressure)
    ├── ClickHouseError             ClickHouse rejected a statement (not retryable)
    ├── PrometheusUnavailable       the Prometheus the pages read is not set or not reachable
    ├── QueryError                  a user query was refused or failed
    └── RequestError                a request to the worker (HTTP body, CLI arguments) is malformed

Driver errors (confluent-kafka, clickhouse-connect, chDB) are turned into these
at the boundary with ``raise ... from``, so the CLI can print one clear line
instead of a traceback.
"""


class FleetpulseError(Exception):
    """Root of every error fleetpulse raises on purpose."""


class ConfigError(FleetpulseError):
    """A setting is missing or malformed."""


class ValidationError(FleetpulseError):
    """An event breaks the wire schema; ``field`` names where, ``problem`` says what."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class KafkaUnavailable(FleetpulseError):
    """The Kafka broker cannot be reached."""


class LocalKafkaError(FleetpulseError):
    """The local Apache Kafka broker could not be fetched, formatted, started or stopped."""


class ClickHouseUnavailable(FleetpulseError):
    """ClickHouse cannot be reached right now; the caller should pause and retry."""


class ClickHouseError(FleetpulseError):
    """ClickHouse rejected a statement; retrying will not help."""


class PrometheusUnavailable(FleetpulseError):
    """FLEETPULSE_PROMETHEUS_URL is not set, or that Prometheus did not answer."""


class QueryError(FleetpulseError):
    """A user query was refused (not read-only, several statements) or failed."""


class RequestError(FleetpulseError):
    """A request to the worker (an HTTP body, or the CLI arguments it is built from) is malformed."""
