"""CLI surface: help text per command and table formatting."""

import pytest

from fleetpulse.cli import build_parser
from fleetpulse.migrate import load_migrations
from fleetpulse.querycli import format_table

COMMANDS = ["demo", "worker", "simulate", "drift", "silence", "gpu-sampler", "kafka", "topics", "migrate", "schema", "query",
            "cardinality"]


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert f"    {command}" in out


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([command, "--help"])
    assert exit_.value.code == 0
    assert f"usage: fleetpulse {command}" in capsys.readouterr().out


def test_table_format_aligns_columns_and_counts_rows():
    lines = b'{"model":"m1","requests":12,"p99":0.123456789}\n{"model":"longer-model","requests":3,"p99":null}\n'
    table = format_table(lines).splitlines()
    assert table[0].split() == ["model", "requests", "p99"]
    assert table[2].split() == ["m1", "12", "0.123457"]
    assert table[3].split() == ["longer-model", "3", "NULL"]
    assert table[-1] == "(2 rows)"


def test_migrations_split_into_statements():
    migrations = load_migrations()
    functions = migrations[0]
    assert [s.split()[4] for s in functions.statements()] == ["fleetpulse_bucket_value", "fleetpulse_bucket_quantile"]
