"""`fleetpulse demo` on the embedded defaults: windows show up in ClickHouse, and
Ctrl-C stops the simulator, the worker and the broker it started."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import orjson
import pytest

from fleetpulse.localkafka import free_port

pytestmark = pytest.mark.integration

STATUS = re.compile(r"windows in ClickHouse:\s+(\d+)\s+requests:\s+(\d+)")


def test_demo_shows_windows_then_stops_cleanly_on_ctrl_c(tmp_path):
    kafka_port, http_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETPULSE_")}
    env.update(FLEETPULSE_HOME=str(tmp_path / "home"), FLEETPULSE_KAFKA_PORT=str(kafka_port),
               FLEETPULSE_HTTP_PORT=str(http_port), FLEETPULSE_CLICKHOUSE_URL=f"chdb://{tmp_path}/chdb")
    started = time.monotonic()
    demo = subprocess.Popen([sys.executable, "-m", "fleetpulse", "demo", "--rate", "500"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output, first_window_s = [], None
    try:
        for line in demo.stdout:
            output.append(line)
            match = STATUS.search(line)
            if match and int(match[1]) > 0 and int(match[2]) > 0:
                first_window_s = time.monotonic() - started
                break
            assert time.monotonic() - started < 120, "no window within 120 s:\n" + "".join(output)
        pages = f"http://127.0.0.1:{http_port}"
        with urllib.request.urlopen(pages + "/", timeout=30) as response:
            assert b"<html" in response.read().lower()
        requests = _panel(pages, "fleet_requests")
        assert requests["rows"][0][0] > 0, requests
        pages_live_s = time.monotonic() - started
        # The Pipeline health page reads the Prometheus the demo started.
        deadline = time.monotonic() + 90
        while not (events := _panel(pages, "health_events_in"))["rows"]:
            assert time.monotonic() < deadline, f"no Prometheus data for the pipeline page: {events}"
            time.sleep(1)
    finally:
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=90)
        output.append(rest)
    text = "".join(output)
    print(f"first window visible {first_window_s:.1f}s, pages with data {pages_live_s:.1f}s "
          "after `fleetpulse demo` started")
    assert first_window_s is not None, text
    assert demo.returncode == 0, text
    assert text.startswith(f"fleetpulse demo: the dashboards will be at http://127.0.0.1:{http_port}/"), text[:300]
    assert f"  dashboards   http://127.0.0.1:{http_port}/" in text
    assert f"http://127.0.0.1:{http_port}/metrics" in text
    assert 'fleetpulse query "SELECT' in text
    assert "local Kafka broker stopped" in text
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", kafka_port)) != 0, "the broker should be stopped"
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", http_port)) != 0, "the worker should be stopped"
    prometheus_port = int(re.search(r"Prometheus   http://127.0.0.1:(\d+)", text)[1])
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", prometheus_port)) != 0, "the demo's Prometheus should be stopped"


def _panel(base: str, name: str) -> dict:
    with urllib.request.urlopen(f"{base}/api/panels/{name}", timeout=30) as response:
        return orjson.loads(response.read())
