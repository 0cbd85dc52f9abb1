"""Request events for tests: a valid one to vary, and columns decoded as the worker does."""

import orjson

from tests.clock import RECENT_HOUR


def good_request(**overrides):
    event = {
        "type": "request", "version": 1, "timestamp": RECENT_HOUR + 0.25,
        "request.id": "r-1", "trace_id": "0af7651916cd43dd8448eb211c80319c",
        "gen_ai.request.model": "llama-3-8b", "host.name": "node-01",
        "gen_ai.server.request.duration": 0.84, "gen_ai.server.time_to_first_token": 0.12,
        "gen_ai.server.time_per_output_token": 0.02, "gen_ai.usage.input_tokens": 512,
        "gen_ai.usage.output_tokens": 128, "error.type": None,
    }
    event.update(overrides)
    return event


def request_columns(events: list[dict]):
    """Columns of events given as (partial) dicts, filled in from good_request and
    decoded the way the worker decodes them (schemas.fast): every one must be valid."""
    from fleetpulse.schemas.fast import decode_requests
    from fleetpulse.streams.windows.columns import to_columns

    decoded = decode_requests([orjson.dumps(good_request(**e)) for e in events], 1 << 20)
    assert not decoded.dead, decoded.dead[:3]
    return to_columns(decoded.events)
