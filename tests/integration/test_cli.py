"""What a user sees from the CLI: one clear line and exit 1 when a service is
missing; migrate, topics and query working against the real thing."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import orjson
import pytest

from fleetpulse.localkafka import free_port
from fleetpulse.migrate import load_migrations

pytestmark = pytest.mark.integration


def run_cli(*args: str, env: dict, timeout: float = 90) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLEETPULSE_")}
    return subprocess.run([sys.executable, "-m", "fleetpulse", *args], env={**clean, **env},
                          capture_output=True, text=True, timeout=timeout)


def closed_port() -> int:
    port = free_port()
    with socket.socket() as s:  # nothing listens here
        assert s.connect_ex(("127.0.0.1", port)) != 0
    return port


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[-1].startswith("fleetpulse: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[-1]


def test_unreachable_broker_is_one_clear_line(tmp_path):
    port = closed_port()
    result = run_cli("topics", env={"FLEETPULSE_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}", "FLEETPULSE_HOME": str(tmp_path)})
    assert_one_line_error(result, f"127.0.0.1:{port}", "FLEETPULSE_KAFKA_BOOTSTRAP")


def test_worker_with_unreachable_broker_exits_with_one_line(tmp_path):
    port = closed_port()
    result = run_cli("worker", env={"FLEETPULSE_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}",
                                    "FLEETPULSE_CLICKHOUSE_URL": f"chdb://{tmp_path}/chdb"})
    assert_one_line_error(result, "not reachable")


def test_unreachable_clickhouse_is_one_clear_line(tmp_path):
    port = closed_port()
    result = run_cli("migrate", env={"FLEETPULSE_CLICKHOUSE_URL": f"http://127.0.0.1:{port}"})
    assert_one_line_error(result, f"ClickHouse at http://127.0.0.1:{port}", "not reachable", "FLEETPULSE_CLICKHOUSE_URL")


def test_simulate_with_unreachable_broker_is_one_clear_line(tmp_path):
    port = closed_port()
    result = run_cli("simulate", "--count", "10", env={"FLEETPULSE_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}"})
    assert_one_line_error(result, f"127.0.0.1:{port}", "not reachable")


def test_bad_setting_is_one_clear_line():
    result = run_cli("migrate", env={"FLEETPULSE_HTTP_PORT": "sixty"})
    assert_one_line_error(result, "FLEETPULSE_HTTP_PORT='sixty' is not a valid int")


def test_migrate_then_query_on_chdb_without_a_worker(tmp_path):
    env = {"FLEETPULSE_CLICKHOUSE_URL": f"chdb://{tmp_path}/chdb", "FLEETPULSE_HTTP_PORT": str(closed_port())}
    first = run_cli("migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert f"{len(load_migrations())} migrations applied now" in first.stdout
    again = run_cli("migrate", env=env)
    assert "(0 migrations applied now)" in again.stdout
    result = run_cli("query", "SELECT version, name FROM fleetpulse_migrations ORDER BY version", "--format", "json",
                     env=env)
    assert result.returncode == 0, result.stderr
    rows = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert rows[0] == {"version": 1, "name": "functions"}
    table = run_cli("query", "SELECT count() AS n FROM request_stats", env=env)
    assert table.stdout.splitlines() == ["n", "-", "0", "(1 row)"]
    refused = run_cli("query", "DROP TABLE request_windows", env=env)
    assert_one_line_error(refused, "DROP TABLE ... is refused: the query endpoint runs SELECT")


def test_kafka_status_when_not_running(tmp_path):
    result = run_cli("kafka", "status", env={"FLEETPULSE_HOME": str(tmp_path), "FLEETPULSE_KAFKA_PORT": str(closed_port())})
    assert result.returncode == 3
    assert "not running" in result.stdout
