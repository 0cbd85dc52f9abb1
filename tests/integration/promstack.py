"""Debian's real Prometheus (and Alertmanager) on loopback, for integration tests."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

from fleetpulse.localkafka import free_port


class _Server:
    """A child process with a /-/ready endpoint, as both Prometheus and Alertmanager have."""

    port: int
    log: Path
    proc: subprocess.Popen

    def _launch(self, args: list[str], name: str) -> None:
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"{name} not ready:\n" + self.log.read_text()[-2000:])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Prometheus(_Server):
    """Scrapes the given targets every second, OpenMetrics first, with exemplar storage."""

    def __init__(self, tmp: Path, targets: list[str], jobs: dict[str, list[str]] | None = None,
                 scrape_self: bool = False):
        """``targets`` in job fleetpulse; ``jobs``: more jobs, name -> targets;
        ``scrape_self``: its own /metrics too, in job prometheus."""
        binary = shutil.which("prometheus")
        assert binary, "prometheus is missing: scripts/bootstrap.sh installs Debian's package"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = tmp / "prometheus.yml"
        scrape = {"fleetpulse": targets, **(jobs or {}),
                  **({"prometheus": [f"127.0.0.1:{self.port}"]} if scrape_self else {})}
        config.write_text(json.dumps({  # JSON is YAML
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": addresses}]}
                               for job, addresses in scrape.items() if addresses],
        }))
        self.log = tmp / "prometheus.log"
        self._launch([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
                      f"--web.listen-address=127.0.0.1:{self.port}", "--enable-feature=exemplar-storage"],
                     "prometheus")

    def api(self, path: str, **params) -> dict:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str, at: float | None = None) -> list[dict]:
        params = {"query": promql, **({"time": at} if at is not None else {})}
        return self.api("query", **params)["result"]

    def scalar(self, promql: str, at: float | None = None) -> float | None:
        result = self.query(promql, at)
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, promql: str, expected: float, timeout: float = 60) -> float | None:
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.scalar(promql)
            if value == expected:
                return value
            time.sleep(0.5)
        return value


class Alertmanager(_Server):
    """Debian's Alertmanager, no clustering, routing to the webhook given."""

    def __init__(self, tmp: Path, webhook_url: str, group_interval: str = "2s"):
        binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
        assert binary, "alertmanager is missing: scripts/bootstrap.sh installs Debian's package"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = tmp / "alertmanager.yml"
        config.write_text(json.dumps({
            "route": {"receiver": "hook", "group_by": ["alertname", "model"], "group_wait": "1s",
                      "group_interval": group_interval, "repeat_interval": "1h"},
            "receivers": [{"name": "hook", "webhook_configs": [{"url": webhook_url, "send_resolved": True}]}],
        }))
        self.log = tmp / "alertmanager.log"
        self._launch([binary, f"--config.file={config}", f"--storage.path={tmp / 'am'}",
                      f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="], "alertmanager")


class WebhookReceiver:
    """Collects the JSON bodies POSTed to it (Alertmanager's notifications)."""

    def __init__(self):
        import http.server
        import threading

        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 -- the stdlib's name
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
