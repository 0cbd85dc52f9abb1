"""A database as an earlier release left it, for the upgrade tests."""

from __future__ import annotations

from fleetpulse.clickhouse import ClickHouse
from fleetpulse.migrate import MIGRATIONS_TABLE, load_migrations


def migrated_to(ch: ClickHouse, version: int, names: dict[int, str] | None = None) -> None:
    """Today's migrations up to ``version`` applied and recorded, as a release
    whose newest migration was ``version`` left them; ``names``: versions the
    old release recorded under another name."""
    ch.command(MIGRATIONS_TABLE)
    for m in load_migrations():
        if m.version <= version:
            for statement in m.statements():
                ch.command(statement)
            ch.command("INSERT INTO fleetpulse_migrations (version, name) VALUES ({v:UInt32}, {n:String})",
                       parameters={"v": m.version, "n": (names or {}).get(m.version, m.name)})
