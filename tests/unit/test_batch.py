"""A batch of raw messages becomes rows, dead letters and a stable source token."""

import orjson

from fleetpulse.schemas import encode_batch
from fleetpulse.streams.batch import RawMessage, process_batch, source_of
from fleetpulse.streams.handler import invalid_field
from tests.unit.test_schemas import good_request


def test_source_names_offset_ranges_per_partition_in_stable_order():
    msgs = [RawMessage("t", 2, 7, b""), RawMessage("t", 0, 3, b""), RawMessage("t", 2, 5, b""),
            RawMessage("t", 0, 4, b"")]
    assert source_of(msgs) == "t:0:3-4,t:2:5-7"
    assert source_of(list(reversed(msgs))) == source_of(msgs)


def test_batch_counts_good_events_and_routes_bad_ones():
    msgs = [
        RawMessage("t", 0, 0, encode_batch([good_request(), good_request(**{"host.name": "node-02"})])),
        RawMessage("t", 0, 1, b"\xff\xfe garbage"),
        RawMessage("t", 1, 9, orjson.dumps(good_request(**{"gen_ai.usage.input_tokens": -5}))),
    ]
    result = process_batch(msgs, window_seconds=10, max_bytes=1 << 20, keep_events=True)
    assert result.events == 2 and result.messages == 3
    assert sorted(r[3] for r in result.window_rows) == ["node-01", "node-02"]
    assert len(result.event_rows) == 2
    assert [(d.partition, d.offset) for d in result.dead] == [(0, 1), (1, 9)]
    assert result.dead[0].letter.raw == b"\xff\xfe garbage"
    assert all(r[-1] == "t:0:0-1,t:1:9-9" for r in result.window_rows)


def test_invalid_field_label_drops_the_event_index():
    assert invalid_field("events[17].gen_ai.usage.input_tokens: must be >= 0") == "gen_ai.usage.input_tokens"
    assert invalid_field("message: not valid JSON: x") == "message"
