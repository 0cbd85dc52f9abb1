"""A batch of raw messages becomes rows, dead letters and progress; replays are skipped."""

import orjson

from fleetpulse.schemas import encode_batch
from fleetpulse.streams.windows.batch import RawMessage, process_batch, source_of
from fleetpulse.streams.windows.rows import WINDOW_COLUMNS
from fleetpulse.streams.windows.watermark import PartitionProgress
from tests.events import good_request

T0 = 1764000000.0


def run(msgs, progress=None, lateness=30):
    return process_batch(msgs, progress or {}, window_seconds=10, lateness=lateness, max_bytes=1 << 20,
                         keep_events=True)


def col(rows, name):
    return [r[WINDOW_COLUMNS.index(name)] for r in rows]


def test_source_names_offset_ranges_per_partition_in_stable_order():
    assert source_of({("t", 2): (5, 7), ("t", 0): (3, 4)}) == "t:0:3-4,t:2:5-7"


def test_batch_counts_good_events_and_routes_bad_ones():
    msgs = [
        RawMessage("t", 0, 0, encode_batch([good_request(), good_request(**{"host.name": "node-02"})])),
        RawMessage("t", 0, 1, b"\xff\xfe garbage"),
        RawMessage("t", 1, 9, orjson.dumps(good_request(**{"gen_ai.usage.input_tokens": -5}))),
    ]
    result = run(msgs)
    assert result.events == 2 and result.messages == 3 and result.skipped == 0
    assert sorted(col(result.window_rows, "node")) == ["node-01", "node-02"]
    assert len(result.event_rows) == 2
    assert [(d.partition, d.offset) for d in result.dead] == [(0, 1), (1, 9)]
    assert result.dead[0].letter.raw == b"\xff\xfe garbage"
    assert result.source == "t:0:0-1,t:1:9-9"
    assert col(result.window_rows, "offset_last") == [1, 1]
    # Partition 1 held only a bad message: it is still done, so a replay skips it.
    assert result.progress[("t", 1)] == PartitionProgress(10, float("-inf"))
    assert result.progress[("t", 0)].next_offset == 2


def test_rows_are_kept_apart_per_source_partition():
    msgs = [RawMessage("t", p, 0, orjson.dumps(good_request())) for p in (0, 1)]
    rows = run(msgs).window_rows
    assert sorted(col(rows, "source_partition")) == [0, 1]
    assert col(rows, "requests") == [1, 1]


def test_messages_already_written_are_skipped():
    msgs = [RawMessage("t", 0, o, orjson.dumps(good_request(**{"request.id": f"r{o}"}))) for o in range(5)]
    result = run(msgs, {("t", 0): PartitionProgress(3, T0)})
    assert result.skipped == 3 and result.events == 2
    assert col(result.window_rows, "offset_first") == [3]
    assert result.progress[("t", 0)].next_offset == 5


def test_events_behind_the_watermark_are_kept_as_late_corrections():
    times = [T0 + 100, T0 + 105, T0 + 60, T0 + 85, T0 + 50]
    msgs = [RawMessage("t", 0, i, orjson.dumps(good_request(timestamp=ts))) for i, ts in enumerate(times)]
    rows = run(msgs, lateness=30).window_rows
    late = {(int(ws.timestamp()) - int(T0), flag): n
            for ws, flag, n in zip(col(rows, "window_start"), col(rows, "late"), col(rows, "requests"))}
    # Watermark before the 3rd event: 105 - 30 = 75, so window [60, 70) is closed; [80, 90) is not.
    assert late == {(100, 0): 2, (60, 1): 1, (80, 0): 1, (50, 1): 1}
    assert col(rows, "max_event_time") == [T0 + 105] * 4


def test_lateness_is_the_same_however_the_batch_is_cut():
    times = [T0 + 100, T0 + 40, T0 + 130, T0 + 95, T0 + 99]
    msgs = [RawMessage("t", 0, i, orjson.dumps(good_request(timestamp=ts))) for i, ts in enumerate(times)]
    whole = run(msgs)
    first = run(msgs[:2])
    second = run(msgs[2:], first.progress)
    flags = lambda r: sorted(zip(col(r.window_rows, "window_start"), col(r.window_rows, "late"),
                                 col(r.window_rows, "requests")))
    merged = {}
    for ws, late, n in flags(first) + flags(second):
        merged[(ws, late)] = merged.get((ws, late), 0) + n
    assert merged == {(ws, late): n for ws, late, n in flags(whole)}
    assert whole.late_events == first.late_events + second.late_events == 3


def test_events_older_than_the_windows_ttl_become_dead_letters():
    from fleetpulse.streams.windows.batch import Retention

    msgs = [RawMessage("t", 0, 0, encode_batch([good_request(timestamp=T0 + 5), good_request(timestamp=T0 - 5)]))]
    result = process_batch(msgs, {}, window_seconds=10, lateness=30, max_bytes=1 << 20, keep_events=False,
                           retention=Retention(T0, "FLEETPULSE_WINDOWS_TTL_DAYS=30"))
    assert result.events == 1
    assert len(result.dead) == 1
    assert result.dead[0].letter.reason.startswith(f"events[1].timestamp: {T0 - 5} is older than ClickHouse keeps")
    assert orjson.loads(result.dead[0].letter.raw)["timestamp"] == T0 - 5


def test_an_old_event_no_encoder_can_write_back_keeps_the_message_bytes():
    """The fuzz run's crash loop: an old event with an unknown field nested 300 deep
    (orjson reads 1024 levels, writes 254). Its letter keeps the original bytes."""
    from fleetpulse.streams.windows.batch import Retention

    text = orjson.dumps(good_request(timestamp=T0 - 5)).decode()[:-1] + ', "x": ' + "[" * 300 + "]" * 300 + "}"
    alone = RawMessage("t", 0, 0, text.encode())
    inside = RawMessage("t", 0, 1, b'{"type":"batch","version":1,"events":[' + orjson.dumps(good_request()) + b","
                        + text.encode() + b"]}")
    result = process_batch([alone, inside], {}, window_seconds=10, lateness=30, max_bytes=1 << 20,
                           keep_events=False, retention=Retention(T0, "FLEETPULSE_WINDOWS_TTL_DAYS=30"))
    assert result.events == 1
    assert [(d.offset, d.letter.reason.split(" is ")[0], d.letter.raw) for d in result.dead] == [
        (0, f"timestamp: {T0 - 5}", alone.value),
        (1, f"events[1].timestamp: {T0 - 5}", json_reencoded(text)),  # the event alone
    ]


def json_reencoded(text: str) -> bytes:
    import json

    return json.dumps(json.loads(text), separators=(",", ":")).encode()


def test_batches_split_into_contiguous_runs_by_bytes():
    from fleetpulse.streams.worker.handler import split_by_bytes

    msgs = [RawMessage("t", i % 2, i, b"x" * size) for i, size in enumerate([40, 40, 40, 100, 10])]
    chunks = split_by_bytes(msgs, 90)
    assert [[m.offset for m in c] for c in chunks] == [[0, 1], [2], [3], [4]]
    assert split_by_bytes(msgs, 10_000) == [msgs]


def test_message_batch_splits_by_bytes_like_the_list_form():
    from fleetpulse.streams.windows.batch import MessageBatch
    from fleetpulse.streams.worker.handler import split_by_bytes

    sizes = [40, 40, 40, 100, 10, 0, 90, 1]
    msgs = [RawMessage("t", i % 2, i, b"x" * size) for i, size in enumerate(sizes)]
    for limit in (1, 50, 90, 91, 130, 10_000):
        runs = MessageBatch.of(msgs).split(limit)
        assert [c.offsets.tolist() for c in runs] == [[m.offset for m in c] for c in split_by_bytes(msgs, limit)]
        assert all(sum(map(len, c.values)) <= limit or len(c) == 1 for c in runs)
        assert sum(len(c) for c in runs) == len(msgs)


def test_a_batch_of_columns_skips_and_counts_like_a_list_of_messages():
    from fleetpulse.streams.windows.batch import MessageBatch

    msgs = [RawMessage("t", o % 3, o, orjson.dumps(good_request(**{"request.id": f"r{o}"}))) for o in range(12)]
    progress = {("t", 1): PartitionProgress(5, T0)}
    as_list, as_columns = run(msgs, progress), run(MessageBatch.of(msgs), progress)
    assert as_columns.skipped == as_list.skipped == 2  # offsets 1 and 4 of partition 1
    assert as_columns.window_rows == as_list.window_rows and as_columns.events == 10
    assert as_columns.progress == as_list.progress


def test_retention_letters_name_their_event_and_leave_the_rest_counted():
    from fleetpulse.streams.windows.batch import Retention

    old, new = good_request(timestamp=T0 - 40 * 86400), good_request(timestamp=T0)
    msgs = [RawMessage("t", 0, 0, encode_batch([new, old, {"type": "request"}, new])),
            RawMessage("t", 0, 1, orjson.dumps(old))]
    result = process_batch(msgs, {}, window_seconds=10, lateness=30, max_bytes=1 << 20, keep_events=True,
                           retention=Retention(T0 - 30 * 86400, "FLEETPULSE_WINDOWS_TTL_DAYS=30"))
    assert result.events == 2 and len(result.event_rows) == 2
    reasons = sorted(d.letter.reason.split(":")[0] for d in result.dead)
    assert reasons == ["events[1].timestamp", "events[2].version", "timestamp"]
    assert [r[-1] for r in result.event_rows] == [0, 1]  # the events' places among the message's stored ones


def test_an_event_dated_2099_is_dead_lettered_and_moves_no_watermark():
    from fleetpulse.settings import load_settings
    from fleetpulse.streams.windows.batch import Retention

    bounds = Retention.now(load_settings(environ={}), clock=T0)  # the default: 300 s of skew
    year_2099 = 4_070_908_800.0
    msgs = [RawMessage("t", 0, 0, orjson.dumps(good_request(timestamp=T0 - 20))),
            RawMessage("t", 0, 1, orjson.dumps(good_request(timestamp=year_2099))),
            RawMessage("t", 0, 2, orjson.dumps(good_request(timestamp=T0 - 10))),
            RawMessage("t", 0, 3, encode_batch([good_request(timestamp=T0 + 299), good_request(timestamp=T0 + 301)]))]
    result = process_batch(msgs, {}, window_seconds=10, lateness=30, max_bytes=1 << 20, keep_events=False,
                           retention=bounds)
    assert [(d.offset, d.letter.reason) for d in result.dead] == [
        (1, f"timestamp: {year_2099} is ahead of the worker's clock by more than FLEETPULSE_MAX_CLOCK_SKEW_SECONDS=300 "
            "allows; not stored (fix the sender's clock, or raise the setting)"),
        (3, f"events[1].timestamp: {T0 + 301} is ahead of the worker's clock by more than "
            "FLEETPULSE_MAX_CLOCK_SKEW_SECONDS=300 allows; not stored (fix the sender's clock, or raise the setting)"),
    ]
    assert orjson.loads(result.dead[0].letter.raw)["timestamp"] == year_2099
    # The watermark follows the events that were kept: T0 + 299 is within the bound.
    assert result.events == 3 and result.progress[("t", 0)] == PartitionProgress(4, T0 + 299)
    assert result.late_events == 0  # T0 - 10 is still on time: 2099 did not move the watermark

    # A batch of its own later on: the partition's watermark is where the good events left it.
    later = process_batch([RawMessage("t", 0, 4, orjson.dumps(good_request(timestamp=T0 + 280)))],
                          result.progress, window_seconds=10, lateness=30, max_bytes=1 << 20, keep_events=False,
                          retention=bounds)
    assert later.events == 1 and later.late_events == 0 and not later.dead


def test_a_gpu_sample_from_the_future_is_dead_lettered_too():
    from fleetpulse.settings import load_settings
    from fleetpulse.streams.windows.batch import Retention
    from fleetpulse.streams.gpu.samples import gpu_rows

    def sample(ts):
        return orjson.dumps({"type": "gpu", "version": 1, "timestamp": ts, "host.name": "h", "gpu.uuid": "GPU-1",
                             "gpu.index": 0, "gpu.utilization": 50.0})

    bounds = Retention.now(load_settings(environ={}, max_clock_skew_seconds=60), clock=T0)
    rows, dead = gpu_rows([RawMessage("g", 0, 0, sample(T0 + 30)), RawMessage("g", 0, 1, sample(T0 + 61))],
                          1 << 20, bounds, 10)
    assert len(rows) == 1 and rows[0][0].timestamp() == T0 + 30
    assert [(d.offset, d.letter.reason.split(" by more than ")[1]) for d in dead] == [
        (1, "FLEETPULSE_MAX_CLOCK_SKEW_SECONDS=60 allows; not stored (fix the sender's clock, or raise the setting)")]


def test_raw_events_of_many_days_are_cut_into_runs_of_at_most_fifty_days():
    """request_events is partitioned by day and ClickHouse refuses an INSERT over
    100 partitions: one envelope of 150 days becomes three INSERTs, the same on a replay."""
    from datetime import datetime, timezone

    from fleetpulse.streams.windows.rows import EVENT_COLUMNS, EventRun

    def day(ts):
        return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y%m%d")

    days = [good_request(**{"request.id": f"d{d}", "timestamp": T0 - d * 86400}) for d in range(150)]
    msgs = [RawMessage("t", 0, 0, orjson.dumps(good_request(timestamp=T0 + 1))),
            RawMessage("t", 0, 1, encode_batch(days))]
    result = run(msgs)
    runs, rows = result.event_runs, result.event_rows
    assert [(r.lo, r.hi) for r in runs] == [(0, 50), (50, 100), (100, 151)]  # oldest first; T0's day has two
    assert [r.days for r in runs] == [f"{day(T0 - 149 * 86400)}-{day(T0 - 100 * 86400)}",
                                      f"{day(T0 - 99 * 86400)}-{day(T0 - 50 * 86400)}",
                                      f"{day(T0 - 49 * 86400)}-{day(T0)}"]
    for r in runs:
        assert len({row[0].date() for row in rows[r.lo:r.hi]}) <= 50
    where = [EVENT_COLUMNS.index(c) for c in ("source_offset", "event_index")]
    assert sorted(tuple(row[i] for i in where) for row in rows) == [(0, 0)] + [(1, i) for i in range(150)]
    assert [tuple(row[i] for i in where) for row in rows[-2:]] == [(0, 0), (1, 0)]  # within a day: as consumed
    again = run(msgs)
    assert again.event_runs == runs and again.event_rows == rows

    few_days = run([RawMessage("t", 0, 0, encode_batch(days[:3]))])
    assert few_days.event_runs == [EventRun(0, 3, "")]
    assert [r[EVENT_COLUMNS.index("event_index")] for r in few_days.event_rows] == [0, 1, 2]  # order kept
