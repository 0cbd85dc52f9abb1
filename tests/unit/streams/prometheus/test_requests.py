"""Prometheus re-export: exact bucket counts on sketch edges, capped labels, exemplars."""

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from fleetpulse.streams.prometheus.requests import RequestExporter, le_indices, le_text
from fleetpulse.streams.windows.sketch import bucket_indices
from tests.events import good_request, request_columns


def exported(labels=("model",), cap=10, n=2000, seed=1, nodes=3):
    rng = np.random.default_rng(seed)
    events = [good_request(**{"gen_ai.server.request.duration": float(rng.lognormal(-1, 1.2)),
                              "host.name": f"node-{i % nodes}", "trace_id": f"{i:032x}",
                              "error.type": "timeout" if i % 10 == 0 else None}) for i in range(n)]
    le = le_indices([0.125, 0.25, 0.5, 1, 2, 4])
    exporter = RequestExporter(list(labels), cap, le)
    registry = CollectorRegistry()
    registry.register(exporter)
    exporter.observe(request_columns(events))
    return events, le, registry


def sample(text: str, name: str, **labels) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} {labels} not in exposition")


def test_le_edges_snap_to_sketch_edges():
    assert le_indices([1, 0.5, 2.0, 0.3]) == [-56, -32, 0, 32]
    assert le_text(32) == "2.0" and le_text(-32) == "0.5"


def test_bucket_counts_are_exactly_the_sketch_counts_below_each_edge():
    events, le, registry = exported()
    text = generate_latest(registry).decode()
    indices = bucket_indices(np.array([e["gen_ai.server.request.duration"] for e in events]))
    for k in le:
        expected = int((indices <= k).sum())
        got = sample(text, "gen_ai_server_request_duration_seconds_bucket", model="llama-3-8b", le=le_text(k))
        assert got == expected, (k, got, expected)
    assert sample(text, "gen_ai_server_request_duration_seconds_count", model="llama-3-8b") == len(events)
    assert sample(text, "gen_ai_server_requests_total", model="llama-3-8b", status="error") == 200
    assert sample(text, "gen_ai_server_requests_total", model="llama-3-8b", status="ok") == 1800
    assert sample(text, "gen_ai_server_errors_total", model="llama-3-8b", error_type="timeout") == 200
    assert sample(text, "gen_ai_usage_input_tokens_total", model="llama-3-8b") == 512 * 2000


def test_label_values_past_the_cap_fold_into_other_and_are_counted():
    _, _, registry = exported(labels=("model", "node"), cap=2, nodes=5)
    text = generate_latest(registry).decode()
    nodes = {line.split('node="')[1].split('"')[0] for line in text.splitlines()
             if line.startswith("gen_ai_server_request_duration_seconds_count")}
    assert nodes == {"node-0", "node-1", "__other__"}
    assert sample(text, "fleetpulse_label_values_folded_total", label="node") == 2000 * 3 / 5


def test_openmetrics_buckets_carry_trace_id_exemplars():
    _, _, registry = exported()
    text = openmetrics_latest(registry).decode()
    lines = [line for line in text.splitlines() if line.startswith("gen_ai_server_request_duration_seconds_bucket")]
    with_exemplar = [line for line in lines if '# {trace_id="' in line]
    assert len(with_exemplar) >= len(lines) - 2  # every bucket that received a request
    assert "# {" not in generate_latest(registry).decode()  # the classic format has no exemplars


def test_each_bucket_exemplar_is_its_newest_request():
    events, le, registry = exported()
    text = openmetrics_latest(registry).decode()
    indices = bucket_indices(np.array([e["gen_ai.server.request.duration"] for e in events]))
    slots = np.searchsorted(np.array(le), indices.astype(np.int64), side="left")
    edges = [le_text(k) for k in le] + ["+Inf"]
    for slot, edge in enumerate(edges):
        members = np.flatnonzero(slots == slot)
        line = next(line for line in text.splitlines()
                    if line.startswith("gen_ai_server_request_duration_seconds_bucket") and f'le="{edge}"' in line)
        if members.size:
            assert f'trace_id="{events[members[-1]]["trace_id"]}"' in line, (edge, line)


def test_queue_time_buckets_count_exactly_the_requests_that_have_one():
    """fleetpulse.queue_time is optional: a request without it is in no series
    of the queue histogram (not in +Inf, not in _count), one with 0 is in every
    bucket (the sketch's zero bucket is below every edge)."""
    rng = np.random.default_rng(7)
    queue = [None if i % 4 == 0 else 0.0 if i % 4 == 1 else float(rng.lognormal(-3, 1.5)) for i in range(3000)]
    events = [good_request(**({} if q is None else {"fleetpulse.queue_time": q}), trace_id=f"{i:032x}")
              for i, q in enumerate(queue)]
    le = le_indices([0.001, 0.01, 0.1, 1])
    exporter = RequestExporter(["model"], 10, le)
    registry = CollectorRegistry()
    registry.register(exporter)
    exporter.observe(request_columns(events[:1000]))
    exporter.observe(request_columns(events[1000:]))  # cumulative over batches
    text = generate_latest(registry).decode()
    present = np.array([q for q in queue if q is not None])
    indices = bucket_indices(present)
    assert len(present) == 2250
    for k in le:
        got = sample(text, "fleetpulse_request_queue_time_seconds_bucket", model="llama-3-8b", le=le_text(k))
        assert got == int((indices <= k).sum()), k
    assert 750 <= sample(text, "fleetpulse_request_queue_time_seconds_bucket", model="llama-3-8b", le=le_text(le[0])) < 2250
    assert sample(text, "fleetpulse_request_queue_time_seconds_bucket", model="llama-3-8b", le="+Inf") == 2250
    assert sample(text, "fleetpulse_request_queue_time_seconds_count", model="llama-3-8b") == 2250
    assert sample(text, "fleetpulse_request_queue_time_seconds_sum", model="llama-3-8b") == pytest.approx(present.sum())
    assert sample(text, "gen_ai_server_request_duration_seconds_count", model="llama-3-8b") == 3000


def test_a_label_set_without_any_queue_time_has_no_queue_series():
    events = [good_request(**{"gen_ai.request.model": "a", "fleetpulse.queue_time": 0.5}),
              good_request(**{"gen_ai.request.model": "b"})]
    exporter = RequestExporter(["model"], 10, le_indices([1]))
    registry = CollectorRegistry()
    registry.register(exporter)
    exporter.observe(request_columns(events))
    text = generate_latest(registry).decode()
    assert sample(text, "fleetpulse_request_queue_time_seconds_count", model="a") == 1
    assert 'fleetpulse_request_queue_time_seconds_count{model="b"}' not in text
    assert sample(text, "gen_ai_server_request_duration_seconds_count", model="b") == 1


def test_quality_signals_and_cache_reads_are_counted_per_label_set():
    events = []
    for i in range(100):
        event = good_request(**{"host.name": f"node-{i % 2}", "gen_ai.request.model": "m",
                                "gen_ai.response.finish_reasons": ["length"] if i % 10 == 0 else
                                ["content_filter"] if i % 25 == 1 else ["stop"],
                                "gen_ai.usage.cache_read.input_tokens": 3})
        if i < 80:  # 80 analysed: every 8th refused, every 20th empty; 40 asked for JSON, 4 failed
            event.update({"fleetpulse.output.refusal": int(i % 8 == 0), "fleetpulse.output.empty": int(i % 20 == 0),
                          "fleetpulse.output.repetition": 0.1})
            if i % 2 == 0:
                event["fleetpulse.output.format_ok"] = int(i % 20 != 2)
        events.append(event)
    exporter = RequestExporter(["model", "node"], 10, le_indices([1]))
    registry = CollectorRegistry()
    registry.register(exporter)
    exporter.observe(request_columns(events))
    text = generate_latest(registry).decode()

    def total(signal: str) -> float:
        return sum(sample(text, "fleetpulse_output_quality_total", model="m", node=f"node-{n}", signal=signal)
                   for n in (0, 1))

    assert total("analysed") == 80 and total("refusal") == 10 and total("empty") == 4
    assert total("format_checked") == 40 and total("format_failure") == 4
    assert total("truncation") == 10 and total("content_filter") == 4
    assert sample(text, "fleetpulse_output_quality_total", node="node-0", signal="refusal") == 10  # i % 8 == 0: even
    assert sample(text, "gen_ai_usage_cache_read_input_tokens_total", node="node-1") == 150
