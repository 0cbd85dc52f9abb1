"""Output quality end to end: a simulated fleet whose successful requests carry
the signals a Recorder derives from the response text -> Kafka -> worker ->
request_stats* and /metrics.

Every rate in request_stats (per node), request_stats_model (per model) and
request_stats_rollup (1 minute, per node) equals the simulator's exact truth,
computed the same way (a count over its denominator, in float64); repetition
quantiles are within the sketch's 1.1% of the exact ones (0 is exact); the
/metrics counters equal the truth's totals per model and node.
"""

from __future__ import annotations

import math
from collections import defaultdict

import pytest

from fleetpulse.producers.sim_quality import QualityShares
from fleetpulse.producers.simulator import SimulationConfig, run_simulation
from tests.clock import RECENT_HOUR
from tests.integration.workers import isolated_settings, metric_value

pytestmark = pytest.mark.integration

EVENTS = 40_000
RATES = ("refusal_rate", "empty_rate", "truncation_rate", "content_filter_rate", "format_failure_rate",
         "cache_hit_rate")
COLUMNS = ("requests, input_tokens, analysed, format_checked, cache_read_tokens, " + ", ".join(RATES)
           + ", repetition_p50, repetition_p90, repetition_p99")


@pytest.fixture(scope="module")
def fleet(kafka_settings, tmp_path_factory, start_worker):
    tmp = tmp_path_factory.mktemp("quality")
    settings = isolated_settings(kafka_settings, tmp)
    worker = start_worker(settings)
    config = SimulationConfig(nodes=3, models=2, rate=2000.0, count=EVENTS, seed=7, start=RECENT_HOUR,
                              window_seconds=settings.window_seconds, pace="fast",
                              quality=QualityShares(refusal=0.08, truncation=0.1, repetition=0.2))
    result = run_simulation(settings, config, progress=False)
    assert result.sent == EVENTS
    total = worker.wait_for("SELECT sum(requests) FROM request_stats", EVENTS, timeout=300)
    assert total == EVENTS, worker.log_tail()
    yield settings, worker, result.truth
    assert worker.stop() == 0


def expected(truth, keys: list, requests: int, input_tokens: int) -> dict:
    """The view's columns for the events of ``keys``, from the truth."""
    q = truth.quality
    c = {name: sum(q.row(k)[name] for k in keys) for name in q.COUNTS}

    def rate(num: int, den: int) -> float:
        return num / den if den else math.nan

    return {
        "requests": requests, "input_tokens": input_tokens, "analysed": c["analysed"],
        "format_checked": c["format_checked"], "cache_read_tokens": c["cache_read_tokens"],
        "refusal_rate": rate(c["refusals"], c["analysed"]), "empty_rate": rate(c["empty_outputs"], c["analysed"]),
        "truncation_rate": rate(c["truncations"], requests),
        "content_filter_rate": rate(c["content_filtered"], requests),
        "format_failure_rate": rate(c["format_failures"], c["format_checked"]),
        "cache_hit_rate": rate(c["cache_read_tokens"], input_tokens),
        **{f"repetition_p{int(qq * 100)}": q.repetition_quantile(keys, qq) for qq in (0.5, 0.9, 0.99)},
    }


def check(row: dict, want: dict, where) -> int:
    for column, value in want.items():
        got = row[column]
        if column.startswith("repetition_p"):
            assert (math.isnan(got) and math.isnan(value)) or abs(got - value) <= 0.011 * value, (where, column, got,
                                                                                               value)
        elif isinstance(value, float) and math.isnan(value):
            assert math.isnan(got), (where, column, got)
        else:
            assert got == value, (where, column, got, value)
    return len(want)


def grouped(truth, key_of) -> dict:
    """Truth rows grouped by ``key_of(window_start, model, node)``: keys, requests, input tokens."""
    out = defaultdict(lambda: [[], 0, 0])
    for r in truth.rows():
        g = out[key_of(r["window_start"], r["model"], r["node"])]
        g[0].append((r["window_start"], r["model"], r["node"]))
        g[1] += r["requests"]
        g[2] += r["input_tokens"]
    return out


def test_the_fleet_carries_every_signal(fleet):
    _, _, truth = fleet
    totals = expected(truth, list(truth._rows), truth.requests, sum(r["input_tokens"] for r in truth.rows()))
    assert 0.07 < totals["refusal_rate"] < 0.1 and 0.05 < totals["truncation_rate"] < 0.15
    assert totals["analysed"] < EVENTS  # failed requests have no text, so no signals
    assert 0 < totals["format_failure_rate"] and 0 < totals["empty_rate"] and 0 < totals["content_filter_rate"]
    assert totals["repetition_p50"] < 0.05 < totals["repetition_p90"]


@pytest.mark.parametrize(("view", "key_of"), [
    ("request_stats", lambda w, m, n: (w, m, n)),
    ("request_stats_model", lambda w, m, n: (w, m)),
    ("request_stats_rollup WHERE grain = '1m'", lambda w, m, n: (w // 60 * 60, m, n)),
])
def test_view_rates_equal_the_truth(fleet, view, key_of):
    _, worker, truth = fleet
    groups = grouped(truth, key_of)
    keys = "toUnixTimestamp(window_start) AS w, model" + ("" if "model" in view else ", node")
    rows = worker.query(f"SELECT {keys}, {COLUMNS} FROM {view}")
    assert len(rows) == len(groups)
    checked = 0
    for row in rows:
        key = (row["w"], row["model"]) if "model" in view else (row["w"], row["model"], row["node"])
        keys_, requests, input_tokens = groups[key]
        checked += check(row, expected(truth, keys_, requests, input_tokens), (view, key))
    assert checked == len(groups) * 14


def test_metrics_count_each_signal_per_model_and_node(fleet):
    settings, worker, truth = fleet
    text = worker.wait_for_metric("fleetpulse_events_in_total", EVENTS, topic=settings.topic("requests"))
    per = defaultdict(lambda: defaultdict(int))
    for (w, model, node) in truth._rows:
        for name, value in truth.quality.row((w, model, node)).items():
            per[(model, node)][name] += value
    signal = {"analysed": "analysed", "refusal": "refusals", "empty": "empty_outputs",
              "format_checked": "format_checked", "format_failure": "format_failures", "truncation": "truncations",
              "content_filter": "content_filtered"}
    for (model, node), counts in per.items():
        for name, column in signal.items():
            got = metric_value(text, "fleetpulse_output_quality_total", model=model, node=node, signal=name)
            assert got == counts[column], (model, node, name)
        assert metric_value(text, "gen_ai_usage_cache_read_input_tokens_total", model=model, node=node) == \
            counts["cache_read_tokens"]



def test_the_default_refusal_rule_fires_for_each_model(kafka_settings, tmp_path_factory, start_worker):
    """8% refusals in every window (> 5% for three windows): the built-in
    engine's HighRefusalRate fires for each model. Realtime, with 1 s of
    lateness, so windows close one by one as the engine evaluates them (it
    starts at the newest closed window, and a window closes only once event
    time is past its end plus the allowed lateness)."""
    settings = isolated_settings(kafka_settings, tmp_path_factory.mktemp("quality_rule"), allowed_lateness_seconds=1)
    worker = start_worker(settings)
    config = SimulationConfig(nodes=2, models=2, rate=500.0, count=25_000, seed=3,
                              window_seconds=settings.window_seconds, pace="realtime", burst_every_s=0, quality=QualityShares(refusal=0.08))
    result = run_simulation(settings, config, progress=False)
    models = sorted({m for _, m, _ in result.truth._rows})
    sql = ("SELECT arraySort(groupUniqArray(labels['model'])) FROM alerts "
           "WHERE alert_name = 'HighRefusalRate' AND status = 'firing'")
    assert worker.wait_for(sql, models, timeout=60) == models, worker.log_tail()
    assert worker.stop() == 0
