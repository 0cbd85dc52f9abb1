"""POST JSON to a webhook or Alertmanager, with retries, and nothing secret in the logs.

Credentials in the URL (``https://user:password@host/...``) are sent as HTTP
basic auth and never logged: log lines show scheme, host and port only.
"""

from __future__ import annotations

import base64
import http.client
import logging
import time
import urllib.error
import urllib.parse
import urllib.request

from fleetpulse.settings import safe_url

log = logging.getLogger("fleetpulse.worker")


def post_json(url: str, body: bytes, what: str, attempts: int = 3, timeout: float = 5) -> bool:
    """True once a POST of ``body`` succeeded; False after ``attempts`` failures (each logged)."""
    target, headers = _without_credentials(url)
    for attempt in range(1, attempts + 1):
        try:
            request = urllib.request.Request(target, data=body, method="POST", headers=headers)
            with urllib.request.urlopen(request, timeout=timeout):
                return True
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else type(exc).__name__
            log.warning("%s %s: attempt %d of %d failed: %s", what, safe_url(url), attempt, attempts, reason)
            if attempt < attempts:
                time.sleep(0.5 * attempt)
    return False


def _without_credentials(url: str) -> tuple[str, dict[str, str]]:
    headers = {"Content-Type": "application/json"}
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return url, headers
    user = urllib.parse.unquote(parts.username)
    password = urllib.parse.unquote(parts.password or "")
    headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    netloc = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc)), headers
