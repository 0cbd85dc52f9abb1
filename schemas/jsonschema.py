"""Render the v1 field specs as JSON Schema (draft 2020-12).

``python -m fleetpulse.schemas.jsonschema`` rewrites ``schemas/json/``; a unit
test fails when the committed files differ from what the code renders.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from fleetpulse.schemas.fields import Field
from fleetpulse.schemas.v1 import SCHEMAS, VERSION

JSON_DIR = Path(__file__).parent / "json"
_BASE = "https://fleetpulse.dev/schemas"

_TYPES = {
    "number": {"type": "number"},
    "integer": {"type": "integer"},
    "string": {"type": "string", "minLength": 1},
    "string_list": {"type": "array", "items": {"type": "string"}},
    "string_map": {"type": "object", "additionalProperties": {"type": "string"}},
}


def _property(field: Field) -> dict:
    prop = dict(_TYPES[field.kind])
    if field.minimum is not None:
        prop["minimum"] = field.minimum
    if field.maximum is not None:
        prop["maximum"] = field.maximum
    if field.max_length is not None:
        prop["maxLength"] = field.max_length
    if field.enum is not None:
        prop["enum"] = list(field.enum)
    if field.nullable:
        prop["type"] = [prop["type"], "null"]
        if "enum" in prop:
            prop["enum"].append(None)
    prop["description"] = field.description
    return prop


def event_schema(kind: str) -> dict:
    fields = SCHEMAS[kind]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{_BASE}/{kind}.v{VERSION}.json",
        "title": f"fleetpulse {kind} event v{VERSION}",
        "type": "object",
        "properties": {f.name: _property(f) for f in fields},
        "required": [f.name for f in fields if f.required],
        "additionalProperties": True,
    }


def batch_schema() -> dict:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{_BASE}/batch.v{VERSION}.json",
        "title": f"fleetpulse batch envelope v{VERSION}",
        "type": "object",
        "properties": {
            "type": {"enum": ["batch"]},
            "version": {"type": "integer", "minimum": VERSION, "maximum": VERSION},
            "events": {"type": "array", "items": {"oneOf": [{"$ref": f"{kind}.v{VERSION}.json"} for kind in SCHEMAS]}},
        },
        "required": ["type", "version", "events"],
    }


def rendered() -> dict[str, bytes]:
    """File name -> bytes, exactly as committed under schemas/json/."""
    docs = {f"{kind}.v{VERSION}.json": event_schema(kind) for kind in SCHEMAS}
    docs[f"batch.v{VERSION}.json"] = batch_schema()
    return {name: orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n" for name, doc in docs.items()}


def write_all(directory: Path = JSON_DIR) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in rendered().items():
        (directory / name).write_bytes(data)


if __name__ == "__main__":
    write_all()
    print(f"wrote {len(rendered())} schemas to {JSON_DIR}")
