"""Wire schema v1: validation errors name the field, JSON Schema stays in sync."""

import math

import jsonschema
import orjson
import pytest

from fleetpulse.errors import ValidationError
from fleetpulse.schemas import decode_message, encode_batch, validate_event
from fleetpulse.schemas.jsonschema import JSON_DIR, event_schema, rendered
from tests.events import good_request


def test_good_request_is_valid():
    assert validate_event(good_request(), "request")["host.name"] == "node-01"


@pytest.mark.parametrize("field, value, problem", [
    ("gen_ai.server.request.duration", -0.1, "must be >= 0"),
    ("gen_ai.server.request.duration", math.nan, "must be finite"),
    ("gen_ai.server.request.duration", math.inf, "must be finite"),
    ("gen_ai.server.request.duration", "0.5", "expected a number, got str"),
    ("gen_ai.server.request.duration", True, "expected a number, got bool"),
    ("gen_ai.usage.input_tokens", 1.5, "expected an integer, got float"),
    ("gen_ai.usage.output_tokens", -1, "must be >= 0"),
    ("timestamp", 1764000000250, "must be <= 4102444800, got 1764000000250"),
    ("gen_ai.request.model", "", "must not be empty"),
    ("version", 2, "unknown version 2; this build reads version 1"),
    ("type", "gpu", "expected 'request' on this topic, got 'gpu'"),
    ("gen_ai.response.finish_reasons", "stop", "expected a list of strings"),
])
def test_bad_values_name_field_and_problem(field, value, problem):
    with pytest.raises(ValidationError) as err:
        validate_event(good_request(**{field: value}), "request")
    assert err.value.field == field
    assert problem in err.value.problem


def test_missing_required_field_is_named():
    event = good_request()
    del event["trace_id"]
    with pytest.raises(ValidationError, match="trace_id: is required"):
        validate_event(event, "request")


def test_optional_fields_may_be_absent_or_null():
    event = good_request(**{"gen_ai.server.time_to_first_token": None})
    del event["gen_ai.server.time_per_output_token"]
    assert validate_event(event, "request") is event


def test_single_event_message_decodes():
    decoded = decode_message(orjson.dumps(good_request()), "request", 1 << 20)
    assert len(decoded.events) == 1 and decoded.dead == []


def test_batch_envelope_keeps_good_events_and_dead_letters_bad_ones():
    bad = good_request(**{"gen_ai.server.request.duration": -1})
    raw = encode_batch([good_request(), bad, good_request(**{"request.id": "r-2"})])
    decoded = decode_message(raw, "request", 1 << 20)
    assert [e["request.id"] for e in decoded.events] == ["r-1", "r-2"]
    assert len(decoded.dead) == 1
    assert decoded.dead[0].reason.startswith("events[1].gen_ai.server.request.duration: must be >= 0")
    assert orjson.loads(decoded.dead[0].raw) == bad


@pytest.mark.parametrize("raw, reason", [
    (b"{not json", "message: not valid JSON"),
    (b"[1, 2]", "<event>: expected a JSON object, got list"),
    (b'{"type": "batch", "version": 9, "events": []}', "batch version: unknown version 9"),
    (b'{"type": "batch", "version": 1, "events": {}}', "batch events: expected a list"),
])
def test_malformed_messages_keep_original_bytes(raw, reason):
    decoded = decode_message(raw, "request", 1 << 20)
    assert decoded.events == []
    assert decoded.dead[0].reason.startswith(reason)
    assert decoded.dead[0].raw == raw


def test_oversized_message_is_refused_before_parsing():
    raw = orjson.dumps(good_request(padding="x" * 2000))
    decoded = decode_message(raw, "request", 1000)
    assert decoded.events == []
    assert "over the 1000-byte limit" in decoded.dead[0].reason
    assert decoded.dead[0].raw == raw


def test_json_schema_files_match_the_code():
    for name, data in rendered().items():
        path = JSON_DIR / name
        assert path.exists(), f"{path} missing: run python -m fleetpulse.schemas.jsonschema"
        assert path.read_bytes() == data, f"{path} is stale: run python -m fleetpulse.schemas.jsonschema"


@pytest.mark.parametrize("overrides, valid", [
    ({}, True),
    ({"gen_ai.server.request.duration": -1}, False),
    ({"gen_ai.usage.input_tokens": 1.5}, False),
    ({"gen_ai.request.model": ""}, False),
    ({"version": 2}, False),
    ({"error.type": "timeout"}, True),
    ({"gen_ai.usage.input_tokens": 512.0}, True),
    ({"gen_ai.usage.input_tokens": 512.5}, False),
])
def test_json_schema_agrees_with_the_validator(overrides, valid):
    event = good_request(**overrides)
    schema_ok = jsonschema.Draft202012Validator(event_schema("request")).is_valid(event)
    try:
        validate_event(event, "request")
        code_ok = True
    except ValidationError:
        code_ok = False
    assert schema_ok == code_ok == valid


def test_nan_written_by_lenient_encoders_is_named_and_spares_its_neighbours():
    raw = (b'{"type": "batch", "version": 1, "events": [' + orjson.dumps(good_request())
           + b', {"type": "request", "gen_ai.server.request.duration": NaN}]}')
    decoded = decode_message(raw, "request", 1 << 20)
    assert len(decoded.events) == 1
    assert len(decoded.dead) == 1
    assert decoded.dead[0].reason.startswith("events[1].")
    one = orjson.dumps(good_request()).replace(b'"gen_ai.server.request.duration":0.84',
                                              b'"gen_ai.server.request.duration":NaN')
    dead = decode_message(one, "request", 1 << 20).dead[0]
    assert dead.reason == "gen_ai.server.request.duration: must be finite, got nan"
    assert dead.raw == one


def test_dead_letter_of_an_envelope_event_keeps_nan_visible():
    raw = b'{"type":"batch","version":1,"events":[{"type":"request","version":1,"x":NaN}]}'
    assert decode_message(raw, "request", 1 << 20).dead[0].raw == b'{"type":"request","version":1,"x":NaN}'


@pytest.mark.parametrize("raw, reason", [
    (b'{"type":"request","gen_ai.request.model":"\\ud800"}', "<event>: a string holds a lone UTF-16 surrogate"),
    (b"[" * 100_000, "message: not valid JSON: nested too deeply"),
    (orjson.dumps(good_request()).replace(b'"gen_ai.server.request.duration":0.84', b'"gen_ai.server.request.duration":1e999'),
     "gen_ai.server.request.duration: must be finite, got inf"),
])
def test_inputs_that_only_the_lenient_parser_reads_are_refused_cleanly(raw, reason):
    decoded = decode_message(raw, "request", 1 << 20)
    assert decoded.events == [] and decoded.dead[0].raw == raw
    assert decoded.dead[0].reason.startswith(reason)


def test_decode_never_raises_on_random_bytes():
    import random

    rng = random.Random(1)
    pieces = [b"{", b"}", b"[", b"]", b'"', b":", b",", b"NaN", b"1e999", b"\\ud800", b"\xff", b"null",
              b'"type"', b'"batch"', b'"events"', b'"version"', b"1", b"-", b"true"]
    for _ in range(3000):
        raw = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        decoded = decode_message(raw, "request", 1 << 20)
        assert len(decoded.events) + len(decoded.dead) >= 1 or raw.startswith(b'{"type":"batch"')
