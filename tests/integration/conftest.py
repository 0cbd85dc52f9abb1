"""Session-scoped fixtures for tests against real services.

Each run gets its own state dir, port and topic prefix, so runs on one machine
(or leftovers from an earlier run) never see each other's data.
"""

from __future__ import annotations

import uuid

import pytest

from fleetpulse.localkafka import LocalKafka, free_port
from fleetpulse.settings import Settings, load_settings
from tests.integration.workers import WorkerProcess


@pytest.fixture(scope="session")
def kafka_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings pointing at a fresh local broker, which runs for the whole session.

    The jars come from the shared default cache_dir: fetched once per machine.
    """
    settings = load_settings(
        environ={},
        home=tmp_path_factory.mktemp("home"),
        kafka_port=free_port(),
        topic_prefix=f"t{uuid.uuid4().hex[:8]}.",
    )
    broker = LocalKafka(settings)
    broker.start()
    yield settings
    broker.stop()


@pytest.fixture(scope="module")
def start_worker():
    """Start ``fleetpulse worker`` child processes; every one is stopped when its
    test module ends, pass or fail, so a failed test never leaves a worker
    behind and idle workers do not pile up on a 2-core machine."""
    started: list[WorkerProcess] = []

    def start(settings: Settings, wait: bool = True, **kwargs) -> WorkerProcess:
        worker = WorkerProcess(settings, settings.home / f"worker-{len(started)}.log", **kwargs)
        started.append(worker)
        return worker.start() if wait else worker.launch()

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """chDB opens one path per process: every in-process test shares this one,
    each module in a database of its own (FLEETPULSE_CLICKHOUSE_DATABASE)."""
    return f"chdb://{tmp_path_factory.mktemp('chdb') / 'chdb'}"
