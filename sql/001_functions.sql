-- Quantiles from log-bucket sketches, in SQL (twin of streams/windows/sketch.py).
-- A bucket map is Map(Int16, UInt64): key ceil(log2(x) * 32), value the count.
-- fleetpulse_bucket_value(i): the value bucket i reads back as (relative error <= 1.08%).
CREATE OR REPLACE FUNCTION fleetpulse_bucket_value AS (i) ->
    if(i = -32768, 0., 2 * pow(2, i / 32) / (1 + pow(2, 1 / 32)));

-- fleetpulse_bucket_quantile(buckets, q): the q-quantile, the smallest bucket whose
-- cumulative count reaches rank ceil(q * n); NaN for an empty map. Works on any
-- merged map: sumMap(latency_buckets) over any set of windows, nodes or rollups.
CREATE OR REPLACE FUNCTION fleetpulse_bucket_quantile AS (buckets, q) ->
    if(empty(buckets), nan,
       fleetpulse_bucket_value(
           arraySort(mapKeys(buckets))[
               arrayFirstIndex(
                   c -> c >= greatest(1, ceil(round(q * arraySum(mapValues(buckets)), 6))),
                   arrayCumSum(arraySort((v, k) -> k, mapValues(buckets), mapKeys(buckets))))]));
