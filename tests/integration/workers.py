"""Run ``fleetpulse worker`` as a real child process and talk to it over HTTP,
the way a user does: /health, /query (NDJSON) and /metrics."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import orjson
from confluent_kafka import Consumer

from fleetpulse.localkafka import free_port
from fleetpulse.producers.recorder import Recorder
from fleetpulse.settings import Settings
from fleetpulse.topics import ensure_topics


def isolated_settings(base: Settings, tmp: Path, **overrides) -> Settings:
    """Own topics, consumer group, chDB path and HTTP port on the shared broker."""
    tag = uuid.uuid4().hex[:8]
    settings = another_worker(base, tmp, topic_prefix=f"{base.topic_prefix}{tag}.", **overrides)
    ensure_topics(settings)
    return settings


#: Tests close windows by sending one event ahead on one partition (or host):
#: the others, done sending, stop holding the fleet watermark after this long.
#: The tests of the fleet watermark itself set their own.
TEST_IDLE_SECONDS = 5


def another_worker(base: Settings, tmp: Path, **overrides) -> Settings:
    """Same topics as ``base``; its own consumer group (unless given), chDB path and port."""
    tag = uuid.uuid4().hex[:8]
    home = tmp / tag
    home.mkdir(parents=True)
    return dataclasses.replace(
        base, **{"kafka_bootstrap": base.bootstrap, "consumer_group": f"fleetpulse-{tag}",
                 "clickhouse_url": f"chdb://{home / 'chdb'}", "http_port": free_port(), "home": home,
                 "idle_partition_seconds": TEST_IDLE_SECONDS, **overrides},
    )


class WorkerProcess:
    def __init__(self, settings: Settings, log_path: Path, command: list[str] | None = None, env: dict | None = None):
        self.settings = settings
        self.command = command or ["-m", "fleetpulse", "worker"]
        self.extra_env = env or {}
        self.log_path = log_path
        self.base = f"http://{settings.http_host}:{settings.http_port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> "WorkerProcess":
        return self.launch().wait_ready(timeout)

    def launch(self) -> "WorkerProcess":
        env = {**os.environ, **self.settings.to_environ(), **self.extra_env}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, *self.command], env=env,
                                         stdout=log, stderr=subprocess.STDOUT)
        return self

    def wait_ready(self, timeout: float = 90) -> "WorkerProcess":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self._get("/health")
                return self
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.3)
        raise AssertionError(f"worker not ready within {timeout}s:\n{self.log_tail()}")

    def _get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.base + path, timeout=60) as r:
            return r.read()

    def post(self, path: str, body: object, headers: dict | None = None) -> bytes:
        """POST ``body`` as JSON, as the CLI does (with the token when the settings have one)."""
        auth = {"Authorization": f"Bearer {self.settings.http_token.reveal()}"} if self.settings.http_token else {}
        request = urllib.request.Request(self.base + path, data=orjson.dumps(body), method="POST",
                                         headers={"Content-Type": "application/json", **auth, **(headers or {})})
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.read()

    def query(self, sql: str) -> list[dict]:
        return [orjson.loads(line) for line in self.post("/query", {"sql": sql}).splitlines() if line]

    def scalar(self, sql: str):
        rows = self.query(sql)
        return next(iter(rows[0].values())) if rows else None

    def health(self) -> tuple[int, dict]:
        """(status, answer) of /health: 200 ok, or 503 with the reason ingestion is stalled."""
        try:
            return 200, orjson.loads(self._get("/health"))
        except urllib.error.HTTPError as exc:
            return exc.code, orjson.loads(exc.read())

    def metrics(self) -> str:
        return self._get("/metrics").decode()

    def wait_for(self, sql: str, expected, timeout: float = 180):
        """Poll until the scalar query returns ``expected``; the last value on timeout."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            assert self.alive(), f"worker died:\n{self.log_tail()}"
            value = self.scalar(sql)
            if value == expected:
                return value
            time.sleep(0.5)
        return value

    def wait_for_progress(self, sql: str, beyond: float, timeout: float = 180):
        """Poll until the scalar query returns more than ``beyond``; the last value on timeout."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            assert self.alive(), f"worker died:\n{self.log_tail()}"
            value = self.scalar(sql)
            if value is not None and value > beyond:
                return value
            time.sleep(0.2)
        return value

    def wait_for_metrics(self, check, timeout: float = 60) -> str:
        """The /metrics text once ``check(text)`` holds. A batch's rows are visible
        to readers (their own session, beside the writer) a moment before the
        worker counts the batch: a test that saw the rows waits for the counts."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.alive(), f"worker died:\n{self.log_tail()}"
            text = self.metrics()
            if check(text) or time.monotonic() > deadline:
                return text
            time.sleep(0.2)

    def wait_for_metric(self, name: str, expected: float, timeout: float = 60, **labels: str) -> str:
        """The /metrics text once the sum of ``name`` with ``labels`` equals ``expected``."""
        return self.wait_for_metrics(lambda text: metric_value(text, name, **labels) == expected, timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30) -> int:
        if not self.alive():
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a crash or the OOM killer."""
        if self.alive():
            self.proc.kill()
            self.proc.wait()

    def status(self) -> dict[str, str]:
        """The worker's /proc status fields: ``VmRSS``, ``RssAnon``, ``Threads``, ..."""
        with open(f"/proc/{self.proc.pid}/status") as status:
            return {name: value.strip() for name, _, value in (line.partition(":") for line in status)}

    def rss_bytes(self) -> int:
        return int(self.status()["VmRSS"].split()[0]) * 1024

    def assigned_partitions(self) -> list[int]:
        """The partitions of the last assignment the worker logged."""
        found = re.findall(r"assigned \S+ partitions \[([\d, ]*)\]", self.log_tail(1000))
        return [int(p) for p in found[-1].split(",") if p.strip()] if found else []

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def until(condition, timeout: float = 60, what: str = ""):
    """Poll ``condition`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def run_simulator(settings: Settings, *args: str) -> subprocess.Popen:
    """``fleetpulse simulate`` as a child process, so it can run beside a test."""
    env = {**os.environ, **settings.to_environ()}
    return subprocess.Popen([sys.executable, "-m", "fleetpulse", "simulate", "--quiet", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def read_truth(path: Path) -> dict[tuple, dict]:
    return {(r["window_start"], r["model"], r["node"]): r for r in map(orjson.loads, path.read_bytes().splitlines())}


def metric_value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        series, value = line.rsplit(" ", 1)
        if all(f'{k}="{v}"' in series for k, v in labels.items()):
            total += float(value)
    return total


def advance_gpu_watermark(settings: Settings, to: float) -> None:
    """Send one GPU sample at event time ``to`` from a node no test looks at:
    GPU windows are written once the watermark passes them, and after a
    simulation nothing newer arrives to move it."""
    sample = {"type": "gpu", "version": 1, "timestamp": to, "host.name": "watermark", "gpu.uuid": "GPU-watermark",
              "gpu.index": 0}
    with Recorder(settings.bootstrap, settings.topic("gpu")) as recorder:
        recorder.record_batch([sample], block=True)


def read_dead_letters(settings, expected: int, timeout: float = 60) -> list[tuple[bytes, dict]]:
    """Up to ``expected`` dead letters: (original bytes, headers)."""
    consumer = Consumer({"bootstrap.servers": settings.bootstrap, "group.id": "dlq-reader",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([settings.topic("deadletter")])
    out, deadline = [], time.monotonic() + timeout
    while len(out) < expected and time.monotonic() < deadline:
        msg = consumer.poll(1)
        if msg is None or msg.error():
            continue
        out.append((msg.value(), {k: v.decode() for k, v in msg.headers()}))
    consumer.close()
    return out
