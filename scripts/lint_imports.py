"""Check the import-linter contracts in pyproject.toml: ``python scripts/lint_imports.py``.

The installed package is not laid out like the repository: ``streams/`` is
``fleetpulse.streams``, ``schemas/`` is ``fleetpulse.schemas`` (pyproject.toml's
``package-dir``). import-linter finds modules by walking the root package's
directory, so run in the repository it would only see ``fleetpulse/``. This
script builds the installed layout out of symlinks in a temporary directory,
from ``package-dir`` and ``packages``, and runs ``lint-imports`` there against
the repository's pyproject.toml. Exit status and output are lint-imports' own.
Extra arguments go to lint-imports (e.g. ``--verbose``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def installed_layout(into: Path, root: Path = ROOT) -> None:
    """Symlink every package's .py files where the installed package has them."""
    setuptools = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    package_dir: dict[str, str] = setuptools.get("package-dir", {})
    for package in setuptools["packages"]:
        source = root / package_dir.get(package, package.replace(".", "/"))
        target = into.joinpath(*package.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for module in sorted(source.glob("*.py")):
            (target / module.name).symlink_to(module)


def lint_imports() -> Path:
    """lint-imports from the virtualenv running this script."""
    script = Path(sys.executable).parent / "lint-imports"
    if not script.exists():
        raise SystemExit(f"lint-imports not found next to {sys.executable}: "
                         "pip install -e '.[test]' (scripts/bootstrap.sh does)")
    return script


def main(argv: list[str]) -> int:
    command = [str(lint_imports()), str(ROOT / "pyproject.toml"), "--no-cache", *argv]
    with tempfile.TemporaryDirectory(prefix="fleetpulse-lint-") as tmp:
        installed_layout(Path(tmp))
        # lint-imports puts its working directory first on sys.path: the symlinked
        # tree is found before the editable install or the repository.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        return subprocess.run(command, cwd=tmp, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
