"""Apply sql/ to ClickHouse idempotently, recording versions in a migrations table.

Files are ``NNN_name.sql``; each runs once, in order, and its version is
recorded in ``fleetpulse_migrations``. Only the version decides whether a file
has run (the name is recorded for people), so a file may be renamed, and even
cut down, as long as every database, old or new, still ends in the same state:
sql/schema.sql (``fleetpulse schema``) is that state. Statements are written to
be safe to repeat (IF NOT EXISTS / OR REPLACE), so a crash between a statement
and the record only means the file runs again. Settings-driven parts (TTLs) are
applied on every run, so changing a FLEETPULSE_*_TTL_DAYS setting takes effect
at the next migrate.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import re

from fleetpulse.clickhouse import ClickHouse
from fleetpulse.errors import ConfigError

_FILE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")

MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS fleetpulse_migrations
(version UInt32, name String, applied_at DateTime('UTC') DEFAULT now())
ENGINE = MergeTree ORDER BY version
"""


@dataclasses.dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        """Split on ';' at line ends; comments are dropped so empty chunks vanish."""
        body = "\n".join(line for line in self.sql.splitlines() if not line.lstrip().startswith("--"))
        return [s.strip() for s in re.split(r";\s*(?:\n|$)", body) if s.strip()]


def load_migrations(folder=None) -> list[Migration]:
    """The migrations in ``folder`` (default: the installed sql/), by version."""
    found = []
    for entry in (folder or importlib.resources.files("fleetpulse.sql")).iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text()))
    found.sort(key=lambda m: (m.version, m.name))
    for a, b in zip(found, found[1:]):
        if a.version == b.version:  # e.g. a stale file left in a build folder after a rename
            raise ConfigError(f"two migrations with version {a.version:03d}: {a.name} and {b.name}; "
                              "remove the stale one (reinstall fleetpulse from a clean build)")
    return found


def migrate(ch: ClickHouse, log=print) -> list[Migration]:
    """Apply pending migrations; return the ones applied now."""
    ch.command(MIGRATIONS_TABLE)
    done = {row[0] for row in ch.query("SELECT version FROM fleetpulse_migrations").result_rows}
    applied = []
    for m in load_migrations():
        if m.version in done:
            continue
        for statement in m.statements():
            ch.command(statement)
        ch.command("INSERT INTO fleetpulse_migrations (version, name) VALUES ({v:UInt32}, {n:String})",
                   parameters={"v": m.version, "n": m.name})
        log(f"applied {m.version:03d}_{m.name}")
        applied.append(m)
    _apply_ttls(ch)
    return applied


#: Each table whose TTL comes from a setting: the time it counts from, and the setting.
TTL_SETTINGS = {
    "request_events": ("toDateTime(timestamp)", "raw_events_ttl_days"),
    "request_windows": ("window_start", "windows_ttl_days"),
    "request_windows_1m": ("window_start", "rollup_1m_ttl_days"),
    "request_windows_1h": ("window_start", "rollup_1h_ttl_days"),
    "gpu_samples": ("toDateTime(timestamp)", "windows_ttl_days"),
    "gpu_windows": ("window_start", "windows_ttl_days"),
    "tenant_windows": ("window_start", "windows_ttl_days"),
    "gpu_windows_1m": ("window_start", "rollup_1m_ttl_days"),
    "gpu_windows_1h": ("window_start", "rollup_1h_ttl_days"),
}


def _apply_ttls(ch: ClickHouse) -> None:
    for table, (start, setting) in TTL_SETTINGS.items():
        days = getattr(ch.settings, setting)
        # Only new parts and merges apply it; no rewrite of the table on every start.
        ch.command(f"ALTER TABLE {table} MODIFY TTL {start} + INTERVAL {days} DAY",
                   settings={"materialize_ttl_after_modify": 0})
