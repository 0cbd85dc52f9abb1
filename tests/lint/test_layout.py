"""The layout a newcomer reads: the README's map of streams/ is the tree, and
no module in streams/ grows past what one can read in a sitting."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 320


def test_the_readme_layout_lists_exactly_the_packages_of_streams():
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout"):readme.index("\n## ", readme.index("## Layout") + 1)]
    listed = set(re.findall(r"^\| `streams/(\w+)/` \|", layout, re.M))
    packages = {p.name for p in (ROOT / "streams").iterdir() if (p / "__init__.py").exists()}
    assert listed == packages, f"README Layout lists {sorted(listed)}; streams/ has {sorted(packages)}"
    loose = sorted(p.name for p in (ROOT / "streams").glob("*.py") if p.name != "__init__.py")
    assert loose == [], f"modules outside a package in streams/: {loose}"


def test_every_streams_package_maps_its_modules_in_its_docstring():
    for package in sorted(p for p in (ROOT / "streams").iterdir() if (p / "__init__.py").exists()):
        doc = (package / "__init__.py").read_text()
        missing = [m.stem for m in package.glob("*.py") if m.name != "__init__.py" and f"``{m.stem}``" not in doc]
        assert missing == [], f"streams/{package.name}/__init__.py does not map {missing}"


def test_no_module_in_streams_is_longer_than_a_sitting():
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "streams").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"split these (over {MAX_LINES} lines): {long}"
