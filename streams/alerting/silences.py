"""Silences, kept in ClickHouse so every worker applies the same ones."""

from __future__ import annotations

import time
import uuid

from fleetpulse.clickhouse import ClickHouse
from fleetpulse.errors import ConfigError, RequestError
from fleetpulse.streams.alerting.engine import Silence
from fleetpulse.streams.windows.grid import utc
from fleetpulse import params as check

_COLUMNS = ("id", "matchers", "starts_at", "ends_at", "comment")
#: A silence that outlives a month is a rule that should be changed instead.
MAX_SILENCE_SECONDS = 30 * 86400


def add_silence(ch: ClickHouse, matchers: dict[str, str], seconds: float, comment: str) -> str:
    if not matchers:
        raise ConfigError("a silence needs at least one --match LABEL=VALUE")
    if seconds <= 0:
        raise ConfigError("a silence needs a positive duration")
    silence_id = uuid.uuid4().hex[:12]
    now = time.time()
    ch.insert("silences", [[silence_id, matchers, utc(now), utc(now + seconds), comment]], _COLUMNS,
              dedup_token=f"silence:{silence_id}")
    return silence_id


def read_silences(ch: ClickHouse) -> list[Silence]:
    """Every silence, expired ones too, oldest first: what the alert engine
    applies and what ``fleetpulse silence list`` shows."""
    rows = ch.query("SELECT id, matchers, toUnixTimestamp64Milli(starts_at), toUnixTimestamp64Milli(ends_at), "
                    "comment FROM silences FINAL ORDER BY starts_at").result_rows
    return [Silence(i, dict(m), s / 1000, e / 1000, c) for i, m, s, e, c in rows]


def list_silences(ch: ClickHouse, include_expired: bool = False) -> list[dict]:
    now = time.time()
    return [{"id": s.id, "matchers": s.matchers, "starts_at": int(s.starts_at), "ends_at": int(s.ends_at),
             "comment": s.comment, "active": s.starts_at <= now < s.ends_at}
            for s in read_silences(ch) if include_expired or s.ends_at > now]


def expire_silence(ch: ClickHouse, silence_id: str) -> None:
    found = [s for s in list_silences(ch, include_expired=True) if s["id"] == silence_id]
    if not found:
        raise ConfigError(f"no silence with id {silence_id!r} (see `fleetpulse silence list`)")
    s = found[0]
    ch.insert("silences", [[silence_id, s["matchers"], utc(s["starts_at"]), utc(time.time()), s["comment"]]],
              _COLUMNS, dedup_token=f"silence:{silence_id}:expire:{time.time()}")


def handle(ch: ClickHouse, request: object) -> dict:
    """One silence request, as the worker's /silences endpoint and the CLI send
    them. Every field is checked: a malformed request is a RequestError."""
    request = check.body_object(request)
    action = request.get("action")
    if action == "add":
        matchers = check.labels(request, "matchers")
        seconds = check.number(request, "seconds", 1, MAX_SILENCE_SECONDS)
        return {"id": add_silence(ch, matchers, seconds, check.text(request, "comment", ""))}
    if action == "list":
        return {"silences": list_silences(ch)}
    if action == "expire":
        silence_id = check.text(request, "id", limit=64)
        expire_silence(ch, silence_id)
        return {"expired": silence_id}
    raise RequestError(f"action: expected add, list or expire, got {str(action)[:50]!r}")
