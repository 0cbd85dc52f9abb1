"""Which migration files load, in what order, and a clear error for two of one version."""

from __future__ import annotations

import importlib.resources
import re

import pytest

from fleetpulse.errors import ConfigError
from fleetpulse.migrate import load_migrations


def test_every_sql_file_is_a_numbered_migration_or_the_generated_schema():
    """load_migrations skips a name it does not match, so a misnamed migration
    (12_x.sql, 012-x.sql) would silently never run: every .sql file on disk must
    match, with versions 1, 2, 3, ... and no gaps, and only schema.sql is exempt."""
    names = sorted(e.name for e in importlib.resources.files("fleetpulse.sql").iterdir() if e.name.endswith(".sql"))
    assert "schema.sql" in names
    migrations = [n for n in names if n != "schema.sql"]
    assert [n for n in migrations if not re.fullmatch(r"\d{3}_[a-z0-9_]+\.sql", n)] == []
    assert [int(n[:3]) for n in migrations] == list(range(1, len(migrations) + 1))
    assert [f"{m.version:03d}_{m.name}.sql" for m in load_migrations()] == migrations


def test_two_files_of_one_version_are_a_config_error(tmp_path):
    # What a build folder left over from before a rename would ship.
    (tmp_path / "008_gpu_samples.sql").write_text("SELECT 1;")
    (tmp_path / "008_gpu.sql").write_text("SELECT 2;")
    (tmp_path / "007_alerts.sql").write_text("SELECT 3;")
    (tmp_path / "schema.sql").write_text("-- generated, not a migration")
    (tmp_path / "notes.txt").write_text("not a migration")
    with pytest.raises(ConfigError, match="two migrations with version 008: gpu and gpu_samples; "
                                          "remove the stale one"):
        load_migrations(tmp_path)
    (tmp_path / "008_gpu.sql").unlink()
    assert [(m.version, m.name) for m in load_migrations(tmp_path)] == [(7, "alerts"), (8, "gpu_samples")]
