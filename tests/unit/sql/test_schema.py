"""sql/schema.sql (generated, checked by tests/integration/test_schema.py) as
the one statement of the tables that Python must agree with: the GPU fields are
listed in the wire schema (schemas/v1.py), in the writer (streams/gpu/samples.py)
and in gpu_samples (sql/008); here the three are held to one another."""

from __future__ import annotations

import importlib.resources
import re
from datetime import datetime, timezone

import orjson

from fleetpulse.schemas.v1 import GPU
from fleetpulse.settings import load_settings
from fleetpulse.streams.gpu.samples import COLUMNS, gpu_rows
from fleetpulse.streams.windows.batch import RawMessage, Retention
from tests.clock import RECENT_HOUR

#: The wire fields stored under another name; the rest drop ``gpu.`` and turn dots into _.
RENAMED = {"host.name": "node", "gpu.uuid": "gpu_uuid", "gpu.index": "gpu_index", "gpu.name": "gpu_name"}


def table_columns(table: str) -> dict[str, str]:
    """Column -> type of ``table``, in order, as sql/schema.sql has it."""
    text = importlib.resources.files("fleetpulse.sql").joinpath("schema.sql").read_text()
    body = re.search(rf"^CREATE TABLE {table}\n\((.*?)\n\)", text, re.S | re.M)[1]
    return dict(re.findall(r"^\s+`(\w+)` (.+?),?$", body, re.M))


def column_of(field: str) -> str:
    return RENAMED.get(field, field.removeprefix("gpu.").replace(".", "_"))


def test_gpu_samples_has_a_column_for_each_wire_field_in_the_writers_order():
    stored = [f for f in GPU if f.name not in ("type", "version")]
    columns = table_columns("gpu_samples")
    assert list(columns) == [column_of(f.name) for f in stored] == list(COLUMNS)
    for f in stored[5:]:  # the measurements: absent or null on the wire is NULL in the table
        assert columns[column_of(f.name)].startswith("Nullable(") == f.nullable, f.name
        assert re.search(r"Float|Int", columns[column_of(f.name)])[0] == {"number": "Float", "integer": "Int"}[f.kind]


def test_each_wire_field_lands_in_its_own_column():
    """The writer's field list is in the same order as its columns: a sample
    whose every measurement differs comes back with each in its place."""
    sample = {"type": "gpu", "version": 1, "timestamp": RECENT_HOUR, "host.name": "h", "gpu.uuid": "GPU-1",
              "gpu.index": 3, "gpu.name": "H200"}
    measurements = [f for f in GPU if f.name not in sample]
    sample.update({f.name: i + 1 if f.kind == "integer" else i + 1.5 for i, f in enumerate(measurements)})
    retention = Retention.now(load_settings(environ={}), clock=RECENT_HOUR)
    rows, dead = gpu_rows([RawMessage("gpu", 0, 0, orjson.dumps(sample))], 1 << 20, retention, 10)
    assert dead == []
    row = dict(zip(COLUMNS, rows[0]))
    assert row["timestamp"] == datetime.fromtimestamp(RECENT_HOUR, tz=timezone.utc)
    assert {column_of(name): sample[name] for name in sample if name not in ("type", "version", "timestamp")} == \
        {c: v for c, v in row.items() if c != "timestamp"}
