"""``fleetpulse schema``: the schema the migrations leave, as one readable file.

The migrations in sql/ say how a database got where it is; sql/schema.sql says
where it is: ``SHOW CREATE`` of every object after a fresh migrate, so a reader
need not replay every file in their head. It is generated, never edited, and a
test regenerates it and fails when it is stale. Whatever depends on the machine
or the settings is normalized so every machine writes the same file: the
database name is left out, and each settings-driven TTL names its setting.
"""

from __future__ import annotations

import re
import tempfile

from fleetpulse.clickhouse import ClickHouse
from fleetpulse.migrate import TTL_SETTINGS, migrate
from fleetpulse.settings import load_settings

REGENERATE = "fleetpulse schema > sql/schema.sql"

HEADER = f"""\
-- GENERATED FILE: DO NOT EDIT. Regenerate with `{REGENERATE}`.
--
-- The schema that `fleetpulse migrate` leaves in a new database: SHOW CREATE of
-- every object, functions first, then tables, materialized views and views, each
-- by name. To change the schema, add a migration in sql/ and regenerate this
-- file. TTLs that come from settings name the setting (in days) instead of a
-- number; SQL functions are global on a server, and ClickHouse writes a view
-- with the body of each function it calls in place of the call.
"""

# Kinds in the order the file lists them; an engine not named here is a table.
_KINDS = (("Materialized views", ("MaterializedView",)), ("Views", ("View",)), ("Dictionaries", ("Dictionary",)))


def generate() -> str:
    """The schema of a fresh migrate, made in a throwaway chDB with default settings."""
    with tempfile.TemporaryDirectory(prefix="fleetpulse-schema-") as folder:
        ch = ClickHouse(load_settings(environ={}, clickhouse_url=f"chdb://{folder}/chdb",
                                      clickhouse_database="fleetpulse_schema"))
        try:
            migrate(ch, log=lambda _: None)
            return dump(ch)
        finally:
            ch.close()


def dump(ch: ClickHouse) -> str:
    """sql/schema.sql's text for the (migrated) database ``ch`` uses."""
    database = ch.query("SELECT currentDatabase()").result_rows[0][0]
    engines = dict(ch.query("SELECT name, engine FROM system.tables WHERE database = currentDatabase()").result_rows)
    named = {engine for _, kinds in _KINDS for engine in kinds}
    sections = [("Functions", _functions(ch)),
                ("Tables", [_show_create(ch, database, n) for n in sorted(engines) if engines[n] not in named])]
    for title, kinds in _KINDS:
        sections.append((title, [_show_create(ch, database, n) for n in sorted(engines) if engines[n] in kinds]))
    body = "\n".join(f"\n-- {title}\n\n" + "".join(f"{ddl};\n\n" for ddl in ddls) for title, ddls in sections if ddls)
    return HEADER + body.rstrip("\n") + "\n"


def _functions(ch: ClickHouse) -> list[str]:
    """SQL functions have no SHOW CREATE; system.functions keeps their DDL."""
    rows = ch.query("SELECT create_query FROM system.functions WHERE origin = 'SQLUserDefined' "
                    "ORDER BY name").result_rows
    return [r[0] for r in rows]


def _show_create(ch: ClickHouse, database: str, name: str) -> str:
    """The DDL without the database's name, and with each settings-driven TTL naming its setting."""
    ddl = ch.query(f"SHOW CREATE TABLE `{name}`").result_rows[0][0]
    ddl = re.sub(rf"(?<![\w.`]){re.escape(database)}\.", "", ddl)
    if name in TTL_SETTINGS:
        setting = f"FLEETPULSE_{TTL_SETTINGS[name][1].upper()}"
        ddl = re.sub(r"^(TTL .*)toIntervalDay\(\d+\)$", rf"\1toIntervalDay({setting})", ddl, flags=re.M)
    return ddl
