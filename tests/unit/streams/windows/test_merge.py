"""A handover's runs, processed one by one and merged into one write, hold
what processing its messages in one piece would."""

import orjson
import pytest

from fleetpulse.schemas import encode_batch
from fleetpulse.streams.windows.batch import MessageBatch, RawMessage, process_batch
from fleetpulse.streams.windows.merge import merge_results
from fleetpulse.streams.windows.rows import WINDOW_COLUMNS
from fleetpulse.streams.windows.watermark import PartitionProgress
from tests.events import good_request

T0 = 1764000000.0


def _summed(rows: list[list]) -> dict:
    """Window rows summed by their key: what every query of request_windows sees."""
    key_columns = ("window_start", "model", "node", "gpu", "late", "source_partition", "offset_first",
                   "offset_last", "max_event_time")
    out: dict = {}
    for row in rows:
        key = tuple(row[WINDOW_COLUMNS.index(name)] for name in key_columns)
        into = out.setdefault(key, {})
        for name in WINDOW_COLUMNS:
            if name in key_columns or name in ("window_seconds", "source_topic"):
                continue
            value = row[WINDOW_COLUMNS.index(name)]
            if isinstance(value, dict):
                sums = into.setdefault(name, {})
                for k, v in value.items():
                    sums[k] = sums.get(k, 0) + v
            else:
                into[name] = into.get(name, 0) + value
    return out


def test_runs_merged_into_one_write_hold_what_one_batch_would():
    """The worker decodes a handover run by run and writes it as one insert
    (merge_results): the rows, their spans, the progress, the dead letters
    and the tenant rows are what processing the messages in one piece gives."""
    def event(i: int) -> dict:
        return good_request(**{"request.id": f"r{i}", "timestamp": T0 + (i * 7) % 45 - (20 if i % 11 == 0 else 0),
                               "host.name": f"node-{i % 3}", "gen_ai.request.model": f"m{i % 2}",
                               "error.type": ["timeout", "oom", None, "cancelled"][i % 4],
                               "gen_ai.response.finish_reasons": [["stop"], ["length"], ["stop"]][i % 3],
                               "fleetpulse.tenant": f"t{i % 5}" if i % 4 else None})

    msgs = []
    for i in range(60):
        partition, offset = i % 3, 100 + i // 3
        if i % 13 == 0:
            value = b'{"type": "request", "version": 1'  # cut short: a dead letter
        elif i % 5 == 0:
            value = encode_batch([event(1000 + 10 * i + k) for k in range(4)])
        else:
            value = orjson.dumps(event(i))
        msgs.append(RawMessage("t", partition, offset, value))
    batch = MessageBatch.of(msgs)
    progress = {("t", 1): PartitionProgress(101, T0 + 30)}  # partition 1's first message is written already

    def process(part, done):
        return process_batch(part, done, window_seconds=10, lateness=5, max_bytes=1 << 20, keep_events=False)

    whole = process(batch, progress)
    parts, done = [], dict(progress)
    for run in batch.split(600):
        parts.append(process(run, done))
        done.update(parts[-1].progress)
    assert len(parts) >= 4
    merged = merge_results(parts)
    assert (merged.source, merged.spans, merged.progress) == (whole.source, whole.spans, whole.progress)
    assert (merged.messages, merged.skipped, merged.events, merged.late_events) == (
        whole.messages, whole.skipped, whole.events, whole.late_events)
    assert whole.late_events > 0 and whole.skipped == 1
    assert [(d.partition, d.offset, d.letter.reason) for d in merged.dead] == [
        (d.partition, d.offset, d.letter.reason) for d in whole.dead]
    assert len(merged.windows) > len(whole.windows)  # one row per run and group: summed by every query
    assert _summed(merged.window_rows) == _summed(whole.window_rows)
    assert sorted(merged.tenants.rows()) != [] and _tenant_sums(merged) == _tenant_sums(whole)
    assert sum(len(c) for c in merged.columns) == whole.events
    assert merge_results(parts[:1]) is parts[0]


def _tenant_sums(result) -> dict:
    out: dict = {}
    for start, tenant, model, *counts in result.tenants.rows():
        into = out.setdefault((start, tenant, model), [0] * len(counts))
        out[(start, tenant, model)] = [a + b for a, b in zip(into, counts)]
    return out


def test_raw_event_batches_are_not_merged():
    msgs = [RawMessage("t", 0, i, orjson.dumps(good_request(**{"request.id": f"r{i}"}))) for i in range(2)]
    first = process_batch(msgs[:1], {}, window_seconds=10, lateness=30, max_bytes=1 << 20, keep_events=True)
    second = process_batch(msgs[1:], first.progress, window_seconds=10, lateness=30, max_bytes=1 << 20,
                           keep_events=True)
    with pytest.raises(ValueError, match="one by one"):
        merge_results([first, second])
