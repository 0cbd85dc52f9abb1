"""The import-linter contracts in pyproject.toml hold (scripts/lint_imports.py runs lint-imports)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "lint_imports.py")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"lint-imports failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
    assert "0 broken" in done.stdout, done.stdout
