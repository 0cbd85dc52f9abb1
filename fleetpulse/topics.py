"""The topics fleetpulse owns, and creating them on any broker.

Topics are declared here, not auto-created by the broker on first produce: an
auto-created topic gets the broker's default partition count and retention,
and once it exists nobody notices that it is wrong.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Mapping

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from fleetpulse.errors import KafkaUnavailable
from fleetpulse.settings import Settings

log = logging.getLogger(__name__)

_HOUR_MS = 3600 * 1000
_DAY_MS = 24 * _HOUR_MS


@dataclasses.dataclass(frozen=True)
class TopicSpec:
    """One topic as fleetpulse wants it: full name, partition count, topic configs."""

    name: str
    partitions: int
    config: Mapping[str, str]


#: Room for one dead letter: the broker's default request limit is ~1 MiB compressed.
DEADLETTER_MAX_BYTES = 16 * 1024 * 1024


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """The four topics, named with the settings' prefix.

    ``requests`` carries the bulk of the traffic, so its partition count (the
    ceiling on parallel workers) and retention are settings; the others are
    small and fixed.
    """
    def spec(name: str, partitions: int, retention_ms: int, **config: str) -> TopicSpec:
        return TopicSpec(settings.topic(name), partitions, {"retention.ms": str(retention_ms), **config})

    return [
        spec("requests", settings.requests_partitions, settings.requests_retention_hours * _HOUR_MS),
        spec("gpu", 3, 7 * _DAY_MS),
        spec("alerts", 1, 30 * _DAY_MS),
        # A dead letter is the original bytes of a message the broker accepted
        # compressed; it must fit here even when it was oversized to begin with.
        spec("deadletter", 1, 14 * _DAY_MS, **{"max.message.bytes": str(DEADLETTER_MAX_BYTES)}),
    ]


def admin_client(settings: Settings) -> AdminClient:
    """An AdminClient whose librdkafka chatter goes to logging, not to stderr.

    Without the logger, an unreachable broker prints a stream of
    ``%3|FAIL|...`` lines over the one clear error we raise.
    """
    quiet = logging.getLogger("fleetpulse.librdkafka")
    return AdminClient({"bootstrap.servers": settings.bootstrap}, logger=quiet)


def check_kafka(settings: Settings, timeout: float = 5.0) -> None:
    """Raise :class:`KafkaUnavailable` unless a broker answers metadata within ``timeout`` s."""
    _cluster_metadata(admin_client(settings), settings, timeout)


def ensure_topics(settings: Settings, timeout: float = 15.0) -> list[str]:
    """Create the topics that are missing; return the names created.

    Safe to run again: topics that already exist are left as they are (also when
    another process creates one between our listing and our request).
    """
    deadline = time.monotonic() + timeout
    admin = admin_client(settings)
    existing = _cluster_metadata(admin, settings, timeout).topics
    specs = topic_specs(settings)
    for spec in specs:
        if spec.name in existing:
            _report_existing(spec, len(existing[spec.name].partitions))
    missing = [spec for spec in specs if spec.name not in existing]
    created = _create(admin, settings, missing, deadline) if missing else []
    for name in created:
        log.info("topic %s created", name)
    return created


def _report_existing(spec: TopicSpec, partitions: int) -> None:
    """Say so when an existing topic has fewer partitions than the settings ask for.

    We never alter it: adding partitions moves keys to other partitions, which
    the operator has to decide on.
    """
    if partitions < spec.partitions:
        log.warning("topic %s exists with %d partitions, settings ask for %d; left as it is",
                    spec.name, partitions, spec.partitions)
    else:
        log.info("topic %s exists, left as it is", spec.name)


def _create(admin: AdminClient, settings: Settings, specs: list[TopicSpec], deadline: float) -> list[str]:
    """Send one CreateTopics request and wait for every answer until ``deadline``.

    The replication factor is left to the broker (``default.replication.factor``):
    1 on the local broker, whatever the operators chose on a real cluster.
    """
    remaining = max(deadline - time.monotonic(), 0.1)
    new = [NewTopic(s.name, num_partitions=s.partitions, config=dict(s.config)) for s in specs]
    futures = admin.create_topics(new, request_timeout=remaining, operation_timeout=remaining)
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout=max(deadline - time.monotonic(), 0.1))
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                why = exc.args[0].str()
                raise KafkaUnavailable(f"Kafka at {settings.bootstrap} refused to create {name}: {why}") from exc
        except TimeoutError as exc:
            raise _unavailable(settings, f"no answer to creating {name}") from exc
    return created


def _cluster_metadata(admin: AdminClient, settings: Settings, timeout: float):
    """Metadata from a broker that lists at least one broker (a fenced broker lists none)."""
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise _unavailable(settings, exc.args[0].str()) from exc
    if not metadata.brokers:
        raise _unavailable(settings, "it answered but lists no live brokers yet")
    return metadata


def _unavailable(settings: Settings, why: str) -> KafkaUnavailable:
    return KafkaUnavailable(
        f"Kafka at {settings.bootstrap} is not reachable: {why}; "
        "check FLEETPULSE_KAFKA_BOOTSTRAP or run `fleetpulse kafka start`"
    )
