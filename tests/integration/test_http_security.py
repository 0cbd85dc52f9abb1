"""The worker's HTTP surface under attack, against a real worker on chDB while a
simulated fleet streams events into it.

For every attack: the answer is a 4xx with one line, no file is read, created,
changed or truncated, nothing connects to a listener the test runs on
loopback, and the worker keeps ingesting (fleetpulse_events_in_total grows).
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from fleetpulse.settings import Secret
from fleetpulse.streams.worker.webserver import MAX_CONNECTIONS
from tests.integration.test_cli import assert_one_line_error, closed_port, run_cli
from tests.integration.workers import WorkerProcess, isolated_settings, metric_value, run_simulator

pytestmark = pytest.mark.integration

TOKEN = "t0ken-" + "x" * 40


@dataclasses.dataclass
class Target:
    worker: WorkerProcess
    victim: Path  # a file no request may read, change or truncate
    sentinel: Path  # a path no request may create
    listener: socket.socket  # no request may make the worker connect here
    port: int
    mtime: int = 0

    def untouched(self) -> None:
        assert self.victim.read_text() == "do not touch\n"
        assert self.victim.stat().st_mtime_ns == self.mtime
        assert not self.sentinel.exists()
        assert not list(self.sentinel.parent.glob("*.pth"))


@pytest.fixture(scope="module")
def target(kafka_settings, tmp_path_factory, start_worker):
    tmp = tmp_path_factory.mktemp("security")
    settings = isolated_settings(kafka_settings, tmp, query_timeout_seconds=5)
    worker = start_worker(settings)
    fleet = run_simulator(settings, "--rate", "200", "--duration", "3600", "--pace", "realtime", "--nodes", "2")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.setblocking(False)
    victim = tmp / "victim.txt"
    victim.write_text("do not touch\n")
    found = Target(worker, victim, tmp / "created-by-attack.pth", listener, listener.getsockname()[1])
    found.mtime = victim.stat().st_mtime_ns
    wait_for_events(worker, above=0)
    yield found
    fleet.kill()
    fleet.wait()
    listener.close()


def events_in(worker: WorkerProcess) -> float:
    return metric_value(worker.metrics(), "fleetpulse_events_in_total")


def wait_for_events(worker: WorkerProcess, above: float, timeout: float = 90) -> float:
    """Until the worker has counted more than ``above`` events."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.alive(), worker.log_tail()
        count = events_in(worker)
        if count > above:
            return count
        time.sleep(0.3)
    raise AssertionError(f"events_in stayed at {above} for {timeout}s:\n{worker.log_tail()}")


def send(worker: WorkerProcess, method: str, path: str, body: bytes | None = None,
         headers: dict | None = None) -> tuple[int, dict | bytes]:
    """(status, JSON error object or raw body), whatever the status."""
    request = urllib.request.Request(worker.base + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        answer = orjson.loads(raw)
        assert set(answer) == {"error"} and "\n" not in answer["error"], raw
        assert "Traceback" not in answer["error"]
        return exc.code, answer


def query(worker: WorkerProcess, sql: str, token: str | None = None) -> tuple[int, dict | bytes]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return send(worker, "POST", "/query", orjson.dumps({"sql": sql}), headers)


SQL_ATTACKS = {
    "file table function": ("SELECT * FROM file('{victim}', 'LineAsString')", "file() function is refused"),
    "file scalar function": ("SELECT file('{victim}')", "file() function is refused"),
    "environment through file()": ("SELECT * FROM file('/proc/self/environ', 'RawBLOB')", "file() function"),
    "code execution through a .pth file": (
        "WITH 1 AS x INSERT INTO FUNCTION file('{sentinel}', 'LineAsString') SELECT 'import os'", "INSERT"),
    "heredoc hides a semicolon": ("SELECT $$'$$; DROP TABLE silences; SELECT $$'$$", "Multi-statements"),
    "plain second statement": ("SELECT 1; DROP TABLE silences", "Multi-statements"),
    "EXPLAIN of an INSERT truncates": (
        "EXPLAIN PIPELINE INSERT INTO FUNCTION file('{victim}', 'LineAsString') SELECT 'x' "
        "SETTINGS engine_file_truncate_on_insert = 1", "read-only"),
    "EXPLAIN of an INSERT": ("EXPLAIN PIPELINE INSERT INTO FUNCTION file('{victim}', 'LineAsString') SELECT 'x'",
                             "EXPLAIN is allowed for SELECT only"),
    "SET sticks to the session": ("SET readonly = 1", "refused"),
    "SETTINGS lifts the limits": ("SELECT 1 SETTINGS max_execution_time = 100000", "read-only"),
    "INTO OUTFILE": ("SELECT 1 INTO OUTFILE '{sentinel}'", "INTO OUTFILE is refused"),
    "url()": ("SELECT * FROM url('http://127.0.0.1:{port}/x', 'LineAsString')", "read-only"),
    "url() carrying a file": (
        "SELECT * FROM url('http://127.0.0.1:{port}/' || base64Encode(file('{victim}')), 'LineAsString')", "file()"),
    "s3()": ("SELECT * FROM s3('http://127.0.0.1:{port}/bucket-name/key', 'LineAsString')", "read-only"),
    "remote()": ("SELECT * FROM remote('127.0.0.1:{port}', system.one)", "read-only"),
    "executable()": ("SELECT * FROM executable('touch {sentinel}', 'LineAsString', 'x String')", "read-only"),
    "KILL the worker's inserts": ("KILL QUERY WHERE 1", "KILL QUERY ... is refused"),
    "file() in the WHERE of SHOW, which EXPLAIN AST omits": (
        "SHOW TABLES FROM system WHERE toUInt8(concat('x', base64Encode(file('{victim}')))) = 1", "is refused"),
    "file() on a pipe of the worker's own": (
        "SHOW TABLES FROM system WHERE name = 'one' AND length(file('/proc/self/fd/0')) > 0", "is refused"),
    "DESCRIBE url() reads a response": ("DESCRIBE url('http://127.0.0.1:{port}/secret.csv', 'CSVWithNames')",
                                        "DESCRIBE TABLE ... is refused"),
    "DESCRIBE remote() connects": ("DESCRIBE remote('127.0.0.1:{port}', system.one)", "is refused"),
    "DESCRIBE sqlite() creates a file": ("DESCRIBE sqlite('{sentinel}', 't')", "is refused"),
    "DESCRIBE python() reads the worker's globals": ("DESCRIBE python(_LIMIT_HINTS)", "is refused"),
    "python() reads the worker's globals": ("SELECT * FROM python(_LIMIT_HINTS)", "read-only"),
    "APPLY names file() as a string": ("SELECT * APPLY file FROM (SELECT '{victim}' AS p)", "APPLY is refused"),
    "APPLY with a lambda": ("SELECT COLUMNS('p') APPLY(x -> file(x)) FROM (SELECT '{victim}' AS p)",
                            "APPLY is refused"),
    "APPLY on a device that blocks": ("SELECT COLUMNS('p') APPLY file APPLY length FROM (SELECT '/dev/kmsg' AS p)",
                                      "APPLY is refused"),
    "SYSTEM": ("SYSTEM SHUTDOWN", "is refused"),
    "DROP": ("DROP TABLE silences", "is refused"),
    "TRUNCATE": ("TRUNCATE TABLE request_windows", "is refused"),
    "ALTER DELETE": ("ALTER TABLE request_windows DELETE WHERE 1", "is refused"),
    "a trillion rows": ("SELECT count() FROM numbers(1e12)", "too many rows"),
    "rows over the result cap": ("SELECT number FROM numbers(3000000)", "more than 1000000 rows"),
    "failure while rows stream": ("SELECT throwIf(number = 700000) FROM numbers(1000000)", "throwIf"),
}


@pytest.mark.parametrize("name", SQL_ATTACKS)
def test_sql_attack_is_refused_and_touches_nothing(target, name):
    template, why = SQL_ATTACKS[name]
    sql = template.format(victim=target.victim, sentinel=target.sentinel, port=target.port)
    status, answer = query(target.worker, sql)
    assert status == 400, answer
    assert why in answer["error"], answer
    assert "do not touch" not in answer["error"]
    target.untouched()
    # The read-only session is reset after a failure: the next query is answered in full.
    assert query(target.worker, "SELECT count() AS n FROM system.tables WHERE name = 'silences'") == \
        (200, b'{"n":1}\n'), "the silences table is still there"


BROWSER_ATTACKS = {
    "GET runs no SQL": ("GET", "/query?sql=SELECT%201", None, {}, 405),
    "text/plain POST to /query": ("POST", "/query", b"SELECT 1", {"Content-Type": "text/plain"}, 415),
    "text/plain POST to /silences": (
        "POST", "/silences", b'{"action": "add", "matchers": {"severity": "critical"}, "seconds": 3600}',
        {"Content-Type": "text/plain"}, 415),
    "form POST to /drift/baseline": (
        "POST", "/drift/baseline", b"model=m&from=0&to=1", {"Content-Type": "application/x-www-form-urlencoded"}, 415),
    "foreign Origin": ("POST", "/silences", b'{"action": "list"}',
                       {"Content-Type": "application/json", "Origin": "http://evil.example"}, 403),
    "null Origin": ("POST", "/query", b'{"sql": "SELECT 1"}',
                    {"Content-Type": "application/json", "Origin": "null"}, 403),
    "cross-site fetch": ("POST", "/query", b'{"sql": "SELECT 1"}',
                         {"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403),
    "DNS rebinding reads /query": ("POST", "/query", b'{"sql": "SELECT 1"}',
                                   {"Content-Type": "application/json", "Host": "evil.example:6066"}, 403),
    "DNS rebinding reads /metrics": ("GET", "/metrics", None, {"Host": "evil.example"}, 403),
    "faust's own pages are gone": ("GET", "/router/", None, {}, 404),
    "a page's data read cross-site": ("GET", "/api/panels/fleet_requests", None, {"Sec-Fetch-Site": "cross-site"}, 403),
    "a page's data read by a rebinding page": ("GET", "/api/panels/fleet_requests", None,
                                               {"Host": "evil.example:6066"}, 403),
    "SQL in a panel request": ("GET", "/api/panels/fleet_requests?sql=DROP%20TABLE%20alerts", None, {}, 400),
    "a panel's data posted": ("POST", "/api/panels/fleet_requests", b"{}", {"Content-Type": "application/json"}, 405),
    "a static file outside the folder": ("GET", "/static/..%2F..%2Fsettings.py", None, {}, 404),
    "a body that is not JSON": ("POST", "/silences", b"{'action': 'list'}", {"Content-Type": "application/json"}, 400),
    "a body that is not an object": ("POST", "/silences", b"[1, 2]", {"Content-Type": "application/json"}, 400),
    "a silence for ten years": (
        "POST", "/silences", b'{"action": "add", "matchers": {"severity": "critical"}, "seconds": 315360000}',
        {"Content-Type": "application/json"}, 400),
    "a silence of 1e400 seconds": (
        "POST", "/silences", b'{"action": "add", "matchers": {"severity": "critical"}, "seconds": 1e400}',
        {"Content-Type": "application/json"}, 400),
    "matchers of the wrong type": ("POST", "/silences", b'{"action": "add", "matchers": ["x"], "seconds": 60}',
                                   {"Content-Type": "application/json"}, 400),
    "a baseline to the year 10^20": (
        "POST", "/drift/baseline", b'{"model": "m", "from": 0, "to": 100000000000000000000}',
        {"Content-Type": "application/json"}, 400),
    "sql of the wrong type": ("POST", "/query", b'{"sql": 1}', {"Content-Type": "application/json"}, 400),
    "a label name ending in a newline": (
        "POST", "/silences", b'{"action": "add", "matchers": {"alertname\\n": "x"}, "seconds": 60}',
        {"Content-Type": "application/json"}, 400),
    "a Host that only starts like loopback": ("GET", "/metrics", None, {"Host": "[localhost]evil.example"}, 403),
    "a body over 1 MiB": ("POST", "/query", b'{"sql": "' + b"x" * (2 * 1024**2) + b'"}',
                          {"Content-Type": "application/json"}, 413),
}


@pytest.mark.parametrize("name", BROWSER_ATTACKS)
def test_browser_and_request_attacks_are_refused(target, name):
    method, path, body, headers, expected = BROWSER_ATTACKS[name]
    status, answer = send(target.worker, method, path, body, headers)
    assert status == expected, answer
    assert target.worker.post("/silences", {"action": "list"}) == b'{"silences":[]}', "no silence was added"
    target.untouched()


def test_odd_result_types_come_back_as_json(target):
    status, body = query(target.worker, "SELECT map((1, 2), 3) AS m, map(toIPv4('1.2.3.4'), 1) AS ip, "
                                        "toUInt128('340282366920938463463374607431768211455') AS big, "
                                        "map([1, 2], 1) AS listkey, nan AS n, "
                                        "toDateTime('2026-12-01 05:00:00', 'UTC') AS t, " + "[" * 300 + "1" + "]" * 300
                         + " AS deep")
    assert status == 200, body
    row = json.loads(body)  # the stdlib: 128-bit integers are numbers
    assert {k: v for k, v in row.items() if k != "deep"} == {
        "m": {"(1,2)": 3}, "ip": {"1.2.3.4": 1}, "big": 340282366920938463463374607431768211455,
        "listkey": {"[1,2]": 1}, "n": None, "t": "2026-12-01T05:00:00Z"}
    assert body.endswith(b'"deep":' + b"[" * 300 + b"1" + b"]" * 300 + b"}\n")


def test_a_flood_of_idle_connections_leaves_ingestion_and_file_descriptors_alone(target):
    worker = target.worker
    fds = lambda: len(os.listdir(f"/proc/{worker.proc.pid}/fd"))  # noqa: E731
    before_fds, before = fds(), events_in(worker)
    flood = []
    try:
        for _ in range(MAX_CONNECTIONS + 300):
            conn = socket.create_connection(("127.0.0.1", worker.settings.http_port))
            conn.sendall(b"POST /query HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the rest
            flood.append(conn)
        # The event loop accepts and refuses the burst as it gets to it: wait for
        # it (bounded), then the worker holds the cap's worth and no more.
        deadline = time.monotonic() + 15
        while (during_fds := fds()) > before_fds + MAX_CONNECTIONS + 150 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert during_fds <= before_fds + MAX_CONNECTIONS + 150, (before_fds, during_fds)
        assert during_fds < before_fds + len(flood) - 100, "connections past the cap are closed at once"
        deadline = time.monotonic() + 90
        while events_through(worker, flood) <= before:  # ingestion goes on while the flood holds every slot
            assert worker.alive() and time.monotonic() < deadline, worker.log_tail()
            time.sleep(0.3)
    finally:
        for conn in flood:
            conn.close()
    deadline = time.monotonic() + 30
    while True:  # the worker sees the hang-ups and frees the slots
        try:
            assert b"fleetpulse_events_in_total" in worker._get("/metrics")
            break
        except (urllib.error.URLError, ConnectionError):
            assert time.monotonic() < deadline, "the web server did not recover after the flood"
            time.sleep(0.2)


def events_through(worker: WorkerProcess, flood: list[socket.socket]) -> float:
    """fleetpulse_events_in_total while ``flood`` holds every slot: hang up one
    idle connection and take its place (another may win it: then 0). The oldest
    connections hold the slots; the newest were refused at once, and hanging
    one of those up frees nothing."""
    flood.pop(0).close()
    try:
        return events_in(worker)
    except (urllib.error.URLError, ConnectionError):
        return 0


def test_a_heavy_query_hits_its_limit_and_ingestion_goes_on(target):
    worker = target.worker
    before = events_in(worker)
    heavy: dict = {}

    def run_heavy():
        while True:  # a probe below may hold the slot for a moment: then ask again
            heavy["answer"] = query(worker, "SELECT count() FROM system.numbers WHERE cityHash64(number) = 0")
            if heavy["answer"][0] != 429:
                return

    thread = threading.Thread(target=run_heavy)
    started = time.monotonic()
    thread.start()
    second = query(worker, "SELECT 1")
    while second[0] != 429:  # only the heavy query can hold the slot: once refused, it runs
        assert thread.is_alive(), heavy
        second = query(worker, "SELECT 1")
    during = wait_for_events(worker, above=before)  # counted while the query runs
    assert thread.is_alive(), "the heavy query must still be running for this test to mean anything"
    thread.join(60)
    elapsed = time.monotonic() - started
    status, answer = heavy["answer"]
    assert status == 400 and "time limit (FLEETPULSE_QUERY_TIMEOUT_SECONDS=5)" in answer["error"], answer
    assert elapsed < 30, f"the 5 s limit took {elapsed:.0f}s"
    assert second[0] == 429 and "another query is running" in second[1]["error"]
    assert during > before
    wait_for_events(worker, above=during)
    assert query(worker, "SELECT 1 AS one") == (200, b'{"one":1}\n')


def test_after_every_attack_the_worker_is_alive_and_ingesting(target):
    with pytest.raises(BlockingIOError):
        target.listener.accept()  # nothing ever connected
    before = events_in(target.worker)
    wait_for_events(target.worker, above=before)
    target.untouched()
    health = orjson.loads(target.worker._get("/health"))
    assert health == {"status": "ok"}


def test_a_worker_bound_beyond_loopback_needs_a_token(tmp_path):
    result = run_cli("worker", env={"FLEETPULSE_HTTP_HOST": "0.0.0.0", "FLEETPULSE_HOME": str(tmp_path),
                                    "FLEETPULSE_KAFKA_BOOTSTRAP": f"127.0.0.1:{closed_port()}"})
    assert_one_line_error(result, "FLEETPULSE_HTTP_HOST=0.0.0.0", "set FLEETPULSE_HTTP_TOKEN")


def test_with_a_token_requests_without_it_get_401_and_the_cli_sends_it(kafka_settings, tmp_path_factory,
                                                                        start_worker):
    tmp = tmp_path_factory.mktemp("token")
    settings = isolated_settings(kafka_settings, tmp, http_token=Secret(TOKEN))
    worker = start_worker(settings)
    assert query(worker, "SELECT 1")[0] == 401
    assert query(worker, "SELECT 1", token="wrong")[0] == 401
    assert send(worker, "POST", "/silences", b'{"action": "list"}', {"Content-Type": "application/json"})[0] == 401
    assert query(worker, "SELECT 1 AS one", token=TOKEN) == (200, b'{"one":1}\n')
    assert b"fleetpulse_events_in_total" in worker._get("/metrics"), "/metrics stays open"
    assert orjson.loads(worker._get("/health")) == {"status": "ok"}, "/health stays open"
    assert b"<html" in worker._get("/d/fleet").lower(), "the pages carry no data: open"
    assert send(worker, "GET", "/api/panels/fleet_requests", None, {})[0] == 401, "their data is not"
    assert send(worker, "GET", "/api/panels/fleet_requests", None, {"Authorization": f"Bearer {TOKEN}"})[0] == 200

    env = {k: v for k, v in settings.to_environ().items()}
    through_cli = run_cli("query", "SELECT 41 + 1 AS answer", "--format", "json", env=env)
    assert through_cli.returncode == 0, through_cli.stderr
    assert orjson.loads(through_cli.stdout) == {"answer": 42}
    silences = run_cli("silence", "list", env=env)
    assert silences.returncode == 0 and "(0 active)" in silences.stdout, silences.stderr

    without = run_cli("query", "SELECT 1", env={**env, "FLEETPULSE_HTTP_TOKEN": ""})
    assert_one_line_error(without, "bearer token is required", "set FLEETPULSE_HTTP_TOKEN")


@pytest.mark.parametrize("env, fragments", [
    ({"FLEETPULSE_BATCH_MAX_WAIT_SECONDS": "nan"}, ["FLEETPULSE_BATCH_MAX_WAIT_SECONDS='nan'", "finite"]),
    ({"FLEETPULSE_DRIFT_ALPHA": "inf"}, ["FLEETPULSE_DRIFT_ALPHA='inf'", "finite"]),
    ({"FLEETPULSE_HISTOGRAM_BUCKETS": "0.1,fast,1"}, ["FLEETPULSE_HISTOGRAM_BUCKETS", "comma-separated"]),
    ({"FLEETPULSE_HISTOGRAM_BUCKETS": "1,0.5"}, ["FLEETPULSE_HISTOGRAM_BUCKETS", "increase"]),
    ({"FLEETPULSE_HTTP_HOST": "no-such-host.invalid", "FLEETPULSE_HTTP_TOKEN": TOKEN},
     ["FLEETPULSE_HTTP_HOST='no-such-host.invalid' is not a host name or address"]),
    ({"FLEETPULSE_HTTP_HOST": "192.0.2.1", "FLEETPULSE_HTTP_TOKEN": TOKEN},
     ["FLEETPULSE_HTTP_HOST='192.0.2.1' cannot be bound"]),
    ({"FLEETPULSE_CLICKHOUSE_URL": "http://admin:hunter2@:8123"}, ["FLEETPULSE_CLICKHOUSE_URL", "needs a host"]),
    ({"FLEETPULSE_ALERTMANAGER_URL": "ftp://admin:hunter2@am.example/"}, ["FLEETPULSE_ALERTMANAGER_URL",
                                                                         "ftp://am.example"]),
])
def test_bad_settings_are_one_line_and_print_no_secret(tmp_path, env, fragments):
    result = run_cli("worker", env={"FLEETPULSE_HOME": str(tmp_path), "FLEETPULSE_HTTP_PORT": str(closed_port()),
                                    "FLEETPULSE_KAFKA_BOOTSTRAP": f"127.0.0.1:{closed_port()}", **env})
    assert_one_line_error(result, *fragments)
    assert "hunter2" not in result.stderr and "in use" not in result.stderr


def test_fleetpulse_home_is_created_with_its_parents(tmp_path):
    home = tmp_path / "a" / "b" / "home"
    result = run_cli("worker", env={"FLEETPULSE_HOME": str(home), "FLEETPULSE_HTTP_PORT": str(closed_port()),
                                    "FLEETPULSE_KAFKA_BOOTSTRAP": f"127.0.0.1:{closed_port()}"})
    assert_one_line_error(result, "not reachable")  # it got past the home, to the (missing) broker
    assert home.is_dir()
