"""``fleetpulse demo``: the whole pipeline on one machine, stopped by Ctrl-C.

Prints where the dashboards will be, starts the local broker (unless
FLEETPULSE_KAFKA_BOOTSTRAP names one), creates the topics, then runs the
worker and the simulator as child processes (the worker owns chDB, so the demo
itself never opens it) and prints what arrives. When Debian's ``prometheus`` is
installed (scripts/bootstrap.sh installs it) and FLEETPULSE_PROMETHEUS_URL is
not set, a Prometheus scraping the worker runs too, for the Pipeline health page.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson

from fleetpulse.clickhouse import describe
from fleetpulse.errors import FleetpulseError
from fleetpulse.localkafka import LocalKafka, free_port
from fleetpulse.querycli import ask_worker
from fleetpulse.settings import Settings
from fleetpulse.topics import check_kafka, ensure_topics

WORKER_READY_TIMEOUT_S = 90
STATUS_EVERY_S = 5
PROGRESS_SQL = "SELECT count() AS windows, sum(requests) AS requests, max(window_start) AS newest FROM request_stats"
EXAMPLE_SQL = ("SELECT window_start, model, sum(requests) AS requests, sum(errors) AS errors, "
               "round(max(latency_p99), 3) AS worst_node_p99_s FROM request_stats "
               "GROUP BY window_start, model ORDER BY window_start DESC, model LIMIT 9")


def run_demo(settings: Settings, *, rate: float, nodes: int, models: int) -> int:
    # SIGTERM and SIGHUP stop the demo like Ctrl-C does: children and broker included.
    # SIGINT too, explicitly: started in the background by a shell, a process
    # inherits SIGINT ignored, and Python then leaves it ignored.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)
    print(f"fleetpulse demo: the dashboards will be at {_pages_url(settings)} (live data about 20 s from now)",
          flush=True)
    broker = _start_broker(settings)
    children: list[subprocess.Popen] = []
    try:
        ensure_topics(settings)
        settings.home.mkdir(parents=True, exist_ok=True)
        worker_env = {}
        prometheus = _start_prometheus(settings)
        if prometheus is not None:
            children.append(prometheus[0])
            worker_env["FLEETPULSE_PROMETHEUS_URL"] = prometheus[1]
        worker_log = settings.home / "worker.log"
        children.append(_spawn(["worker"], worker_log, worker_env))
        _wait_for_worker(settings, children[-1], worker_log)
        sim_log = settings.home / "simulator.log"
        children.append(_spawn(["simulate", "--rate", str(rate), "--nodes", str(nodes), "--models",
                                str(models), "--duration", str(7 * 24 * 3600), "--pace", "realtime", "--gpu-samples"],
                               sim_log))
        _banner(settings, worker_log, sim_log, broker, prometheus[1] if prometheus else "")
        _watch(settings, children)
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
    finally:
        _stop_children(children)
        if broker is not None:
            broker.stop()
            print("local Kafka broker stopped", flush=True)
    return 0


def _start_broker(settings: Settings) -> LocalKafka | None:
    """Start the local broker if we should; None when the user named their own."""
    if not settings.uses_local_kafka:
        check_kafka(settings, timeout=10)
        print(f"using Kafka at {settings.bootstrap} (FLEETPULSE_KAFKA_BOOTSTRAP)", flush=True)
        return None
    broker = LocalKafka(settings)
    if broker.status().running:
        print(f"local Kafka broker already running at {settings.bootstrap}; leaving it running", flush=True)
        return None
    print(f"starting a local Kafka broker on {settings.bootstrap} ...", flush=True)
    broker.start()
    return broker


def _pages_url(settings: Settings) -> str:
    host = settings.http_host if ":" not in settings.http_host else f"[{settings.http_host}]"
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '[::]') else host}:{settings.http_port}/"


def _start_prometheus(settings: Settings) -> tuple[subprocess.Popen, str] | None:
    """A Prometheus scraping the worker every 5 s, kept under FLEETPULSE_HOME; None
    when one is configured already or none is installed."""
    binary = shutil.which("prometheus")
    if settings.prometheus_url or binary is None:
        if not settings.prometheus_url:
            print("prometheus is not installed: the Pipeline health page stays empty "
                  "(scripts/bootstrap.sh installs it)", flush=True)
        return None
    folder = settings.home / "prometheus"
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "prometheus.yml"
    config.write_text(json.dumps({  # JSON is YAML
        "global": {"scrape_interval": "5s"},
        "scrape_configs": [{"job_name": "fleetpulse", "static_configs": [
            {"targets": [f"127.0.0.1:{settings.http_port}"]}]}]}))
    port = free_port()
    with open(folder / "prometheus.log", "ab") as out:
        proc = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
                                 "--storage.tsdb.retention.time=7d", f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, f"http://127.0.0.1:{port}"


def _spawn(args: list[str], log_file: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    # Own process group: Ctrl-C reaches only the demo, which then stops the
    # children in order (simulator flushes first, then the worker commits).
    with open(log_file, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "fleetpulse", *args], stdout=out,
                                stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, start_new_session=True)


def _wait_for_worker(settings: Settings, worker: subprocess.Popen, log_file: Path) -> None:
    deadline = time.monotonic() + WORKER_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise FleetpulseError(f"the worker exited with code {worker.returncode}:\n{_tail(log_file)}")
        if _query(settings, "SELECT 1") is not None:
            return
        time.sleep(0.5)
    raise FleetpulseError(f"the worker did not answer within {WORKER_READY_TIMEOUT_S}s; see {log_file}")


def _query(settings: Settings, sql: str) -> list[dict] | None:
    answer = ask_worker(settings, "/query", {"sql": sql}, timeout=10)
    return None if answer is None else [orjson.loads(line) for line in answer.splitlines() if line]


def _banner(settings: Settings, worker_log: Path, sim_log: Path, broker: LocalKafka | None,
            prometheus_url: str) -> None:
    web = f"http://{settings.http_host}:{settings.http_port}"
    cli = _cli_path()
    kafka = f"{settings.bootstrap}" + (f" (local broker, log {broker.log_file})" if broker else "")
    prometheus = f"\n  Prometheus   {prometheus_url} (scrapes the worker; the Pipeline health page reads it)" \
        if prometheus_url else ""
    print(f"""
fleetpulse demo is running
  dashboards   {_pages_url(settings)}  (fleet, model, GPUs, drift, alerts, pipeline health)
  Kafka        {kafka}
  ClickHouse   {describe(settings)}, database {settings.clickhouse_database}
  metrics      {web}/metrics
  SQL over HTTP curl -H 'Content-Type: application/json' -d '{{"sql": "SELECT * FROM request_stats LIMIT 5"}}' {web}/query
  logs         {worker_log}, {sim_log}{prometheus}

Try, in another terminal:
  {cli} query "{EXAMPLE_SQL}"
  {cli} query "SELECT * FROM request_stats ORDER BY window_start DESC LIMIT 5" --format json

Windows are {settings.window_seconds}s of event time; each batch's events show up within a second or two.
Ctrl-C stops everything.
""", flush=True)


def _cli_path() -> str:
    """How to call fleetpulse from another terminal: on PATH, or where this one lives."""
    here = Path(sys.executable).parent / "fleetpulse"
    on_path = shutil.which("fleetpulse")
    return "fleetpulse" if on_path and Path(on_path).resolve() == here.resolve() else str(here)


def _watch(settings: Settings, children: list[subprocess.Popen]) -> None:
    while True:
        for child in children:
            if child.poll() is not None:
                what = child.args[3] if child.args[0] == sys.executable else Path(child.args[0]).name
                raise FleetpulseError(f"{what} exited with code {child.returncode}; "
                                      f"see the logs under {settings.home}")
        rows = _query(settings, PROGRESS_SQL)
        if rows and rows[0]["windows"]:
            r = rows[0]
            print(f"{time.strftime('%H:%M:%S')}  windows in ClickHouse: {r['windows']:>6}  "
                  f"requests: {r['requests'] or 0:>9}  newest window: {r['newest']}", flush=True)
        time.sleep(STATUS_EVERY_S)


def _stop_children(children: list[subprocess.Popen]) -> None:
    for child in reversed(children):  # simulator first, then the worker
        if child.poll() is None:
            child.send_signal(signal.SIGINT if child is children[-1] else signal.SIGTERM)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
