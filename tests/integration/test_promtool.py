"""The shipped Prometheus rules are valid and behave as their unit tests say
(Debian's promtool and amtool; scripts/bootstrap.sh installs them). Integration,
not unit: it runs external binaries."""

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def promtool(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: run scripts/bootstrap.sh (Debian package prometheus)"
    return subprocess.run([binary, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_rules_are_valid():
    result = promtool("check", "rules", "infra/prometheus/rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 18 rules found" in result.stdout


def test_rules_pass_their_unit_tests():
    result = promtool("test", "rules", "tests/promtool/rules_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alertmanager_example_is_valid():
    amtool = shutil.which("amtool")
    assert amtool, "amtool is missing: run scripts/bootstrap.sh (Debian package prometheus-alertmanager)"
    result = subprocess.run([amtool, "check-config", "infra/alertmanager/alertmanager.yml"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
