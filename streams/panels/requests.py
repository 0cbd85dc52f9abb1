"""The request dashboards: fleet overview and model detail (pure).

Every rate divides by ``$__interval_s``; every percentile is
``fleetpulse_bucket_quantile`` of the bucket maps summed over the interval
(or the whole range, for a stat tile), which is the true percentile within
the sketch's 1.1%: never an average of stored percentiles.
"""

from __future__ import annotations

from fleetpulse.streams.panels.catalogue import Dashboard, Panel, Variable

MODEL = Variable("model", "Model", "SELECT DISTINCT model FROM request_windows "
                                   "WHERE $__timeFilter(window_start) ORDER BY model")
NODE = Variable("node", "Node", "SELECT DISTINCT node FROM (SELECT node FROM request_windows "
                                "WHERE $__timeFilter(window_start) UNION ALL SELECT node FROM gpu_windows "
                                "WHERE $__timeFilter(window_start)) ORDER BY node")

#: The request windows a panel reads: the grain that fits the interval, the range, the filters.
WINDOWS = ("FROM request_windows_for(interval_s = $__interval_s) WHERE $__timeFilter(window_start) "
           "AND model IN (${model:singlequote}) AND node IN (${node:singlequote})")


def _q(column: str, q: float) -> str:
    return f"fleetpulse_bucket_quantile(sumMap({column}), {q})"


def _series(select: str, by: str = "model") -> str:
    """A time series per ``by``: ``select`` is the value columns, over each interval."""
    return (f"SELECT $__timeInterval(window_start) AS time, {by}, {select} {WINDOWS} "
            f"GROUP BY time, {by} ORDER BY time, {by}")


def _stat(select: str) -> str:
    return f"SELECT {select} {WINDOWS}"


def _map_series(column: str, label: str) -> str:
    """One series per key of a map column (finish reasons, outcomes, errors by type), per second."""
    return (f"SELECT time, {label}, n / $__interval_s AS per_s FROM (SELECT $__timeInterval(window_start) AS time, "
            f"sumMap({column}) AS m {WINDOWS} GROUP BY time) ARRAY JOIN mapKeys(m) AS {label}, mapValues(m) AS n "
            f"ORDER BY time, {label}")


def _length_heatmap(column: str) -> str:
    """Requests per power-of-two length bucket: the sketch's 32 buckets per octave,
    folded to octaves (``le`` is the octave's upper edge; 0 for zero tokens)."""
    return (f"SELECT time, le, sum(n) AS count FROM (SELECT $__timeInterval(window_start) AS time, "
            f"sumMap({column}) AS m {WINDOWS} GROUP BY time) ARRAY JOIN mapKeys(m) AS k, mapValues(m) AS n "
            "GROUP BY time, if(k = -32768, '0', toString(pow(2, ceil(k / 32)))) AS le ORDER BY time, toFloat64(le)")


#: The range's tokens priced by the model_prices table (sql/016_prices.sql); unpriced models count 0.
_TOKEN_COST = ("SELECT sum(fleetpulse_token_cost(w.i, w.o, w.c, p.input_per_million, p.output_per_million, "
               "p.cached_input_per_million)) AS cost FROM (SELECT model, sum(input_tokens) AS i, "
               f"sum(output_tokens) AS o, sum(cache_read_tokens) AS c {WINDOWS} GROUP BY model) AS w "
               "INNER JOIN model_prices AS p ON w.model = p.model")


FLEET = Dashboard(
    "fleet", "Fleet overview",
    "Requests, errors, latency and tokens by model, across the fleet.",
    (MODEL, NODE),
    (
        Panel("fleet_requests", "Requests", "stat", "short", _stat("sum(requests) AS requests"), width=4),
        Panel("fleet_error_rate_total", "Error rate", "stat", "percentunit",
              _stat("sum(errors) / sum(requests) AS error_rate"), width=4),
        Panel("fleet_latency_p99_total", "Latency p99", "stat", "s",
              _stat(f"{_q('latency_buckets', 0.99)} AS latency_p99"), width=4),
        Panel("fleet_ttft_p99_total", "TTFT p99", "stat", "s", _stat(f"{_q('ttft_buckets', 0.99)} AS ttft_p99"),
              width=4),
        Panel("fleet_tpot_p99_total", "TPOT p99", "stat", "s", _stat(f"{_q('tpot_buckets', 0.99)} AS tpot_p99"),
              width=4),
        Panel("fleet_output_tokens_total", "Output tokens/s", "stat", "short",
              _stat("sum(output_tokens) / greatest(1, dateDiff('second', $__fromTime, $__toTime)) AS tokens_per_s"),
              width=4),
        Panel("fleet_token_cost", "Token cost (FLEETPULSE_PRICES)", "stat", "short", _TOKEN_COST, width=4),
        Panel("fleet_requests_per_s", "Requests/s by model", "timeseries", "reqps",
              _series("sum(requests) / $__interval_s AS requests_per_s")),
        Panel("fleet_error_rate", "Error rate by model", "timeseries", "percentunit",
              _series("sum(errors) / sum(requests) AS error_rate")),
        Panel("fleet_latency", "Latency p50 and p99 by model", "timeseries", "s",
              _series(f"{_q('latency_buckets', 0.5)} AS p50, {_q('latency_buckets', 0.99)} AS p99")),
        Panel("fleet_ttft", "Time to first token p50 and p99 by model", "timeseries", "s",
              _series(f"{_q('ttft_buckets', 0.5)} AS p50, {_q('ttft_buckets', 0.99)} AS p99")),
        Panel("fleet_tpot", "Time per output token p50 and p99 by model", "timeseries", "s",
              _series(f"{_q('tpot_buckets', 0.5)} AS p50, {_q('tpot_buckets', 0.99)} AS p99")),
        Panel("fleet_tokens_per_s", "Input and output tokens/s by model", "timeseries", "short",
              _series("sum(input_tokens) / $__interval_s AS input, sum(output_tokens) / $__interval_s AS output")),
    ),
)

MODEL_DETAIL = Dashboard(
    "model", "Model detail",
    "One model (or a few) in depth: per node, queue time, how requests end, lengths, errors.",
    (MODEL, NODE),
    (
        Panel("model_requests_by_node", "Requests/s by node", "timeseries", "reqps",
              _series("sum(requests) / $__interval_s AS requests_per_s", by="node")),
        Panel("model_latency_by_node", "Latency p99 by node", "timeseries", "s",
              _series(f"{_q('latency_buckets', 0.99)} AS p99", by="node")),
        Panel("model_queue_time", "Queue time p50 and p99", "timeseries", "s",
              _series(f"{_q('queue_buckets', 0.5)} AS p50, {_q('queue_buckets', 0.99)} AS p99")),
        Panel("model_errors_by_type", "Errors/s by type", "timeseries", "reqps", _map_series("errors_by_type", "type")),
        Panel("model_finish_reasons", "Finish reasons/s", "timeseries", "reqps",
              _map_series("finish_reasons", "reason")),
        Panel("model_outcomes", "Outcomes/s (answered, empty, refused, error)", "timeseries", "reqps",
              _map_series("outcomes", "outcome")),
        Panel("model_quality_rates", "Refusal, empty, truncation and format-failure rates", "timeseries",
              "percentunit", _series("sum(refusals) / sum(analysed) AS refusal, sum(empty_outputs) / sum(analysed) "
                                     "AS empty, sumMap(finish_reasons)['length'] / sum(requests) AS truncation, "
                                     "sum(format_failures) / sum(format_checked) AS format_failure")),
        Panel("model_repetition", "Repetition (share of repeated word trigrams) p50 and p90", "timeseries",
              "percentunit", _series(f"{_q('repetition_buckets', 0.5)} AS p50, {_q('repetition_buckets', 0.9)} AS p90")),
        Panel("model_cache_hit_rate", "Prompt cache hit rate (cached / input tokens)", "timeseries", "percentunit",
              _series("sum(cache_read_tokens) / sum(input_tokens) AS cache_hit_rate")),
        Panel("model_prompt_lengths", "Prompt length (input tokens)", "heatmap", "short",
              _length_heatmap("input_tokens_buckets")),
        Panel("model_generation_lengths", "Generation length (output tokens)", "heatmap", "short",
              _length_heatmap("output_tokens_buckets")),
    ),
)
