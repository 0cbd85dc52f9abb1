"""Webhook and Alertmanager POSTs: credentials in the URL become basic auth and
never reach the logs."""

import base64
import http.server
import logging
import threading

from fleetpulse.localkafka import free_port
from fleetpulse.streams.alerting.notify import post_json


class _Capture(http.server.BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        _Capture.seen.append((self.path, self.headers.get("Authorization"), self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_credentials_in_the_url_are_sent_as_basic_auth_and_not_logged(caplog):
    server = http.server.HTTPServer(("127.0.0.1", 0), _Capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        assert post_json(f"http://admin:hun%40ter2@127.0.0.1:{port}/api/v2/alerts?x=1", b"[]", "Alertmanager")
    finally:
        server.shutdown()
        server.server_close()
    path, auth, body = _Capture.seen[-1]
    assert path == "/api/v2/alerts?x=1" and body == b"[]"
    assert auth == "Basic " + base64.b64encode(b"admin:hun@ter2").decode()


def test_a_failing_target_is_logged_as_scheme_and_host_only(caplog):
    port = free_port()  # nothing listens
    with caplog.at_level(logging.WARNING, logger="fleetpulse"):
        assert not post_json(f"http://admin:hunter2@127.0.0.1:{port}/hook/SECRETPATH", b"[]", "webhook", attempts=2)
        assert not post_json("http://admin:hunter2@am.example:notaport/", b"[]", "webhook", attempts=1)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3
    assert lines[0].startswith(f"webhook http://127.0.0.1:{port}: attempt 1 of 2 failed")
    assert not any("hunter2" in line or "SECRETPATH" in line or "admin" in line for line in lines), lines
