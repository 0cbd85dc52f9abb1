"""Which migration files load, in what order, and a clear error for two of one version."""

from __future__ import annotations

import pytest

from fleetpulse.errors import ConfigError
from fleetpulse.migrate import load_migrations


def test_shipped_migrations_have_one_file_per_version():
    versions = [m.version for m in load_migrations()]
    assert versions == sorted(set(versions)) and versions[0] == 1


def test_two_files_of_one_version_are_a_config_error(tmp_path):
    # What a build folder left over from before a rename would ship.
    (tmp_path / "010_gpu_windows_written.sql").write_text("SELECT 1;")
    (tmp_path / "010_gpu_drop_derived_views.sql").write_text("SELECT 2;")
    (tmp_path / "009_gpu_rollups.sql").write_text("SELECT 3;")
    (tmp_path / "notes.txt").write_text("not a migration")
    with pytest.raises(ConfigError, match="two migrations with version 010: gpu_drop_derived_views and "
                                          "gpu_windows_written; remove the stale one"):
        load_migrations(tmp_path)
    (tmp_path / "010_gpu_windows_written.sql").unlink()
    assert [(m.version, m.name) for m in load_migrations(tmp_path)] == [(9, "gpu_rollups"),
                                                                        (10, "gpu_drop_derived_views")]
