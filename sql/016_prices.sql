-- Cost (docs/quality.md, "Cost"): the price table of FLEETPULSE_PRICES, which
-- the worker replaces when it starts (fleetpulse/prices.py), and views that
-- price the windows with it. Models, nodes and GPU types without a price are
-- left out of the cost views (an inner join), never priced at 0.
CREATE TABLE IF NOT EXISTS model_prices
(
    model                    String,
    input_per_million        Float64,
    output_per_million       Float64,
    cached_input_per_million Float64
)
ENGINE = MergeTree
ORDER BY model;

-- kind 'gpu': name is a gpu.name (gpu_windows.gpu_name); kind 'node': a
-- host.name, whose price wins over its GPU type's. Prices are per GPU.
CREATE TABLE IF NOT EXISTS gpu_prices
(
    kind           LowCardinality(String),
    name           String,
    hourly         Float64,
    energy_per_kwh Float64
)
ENGINE = MergeTree
ORDER BY (kind, name);

-- fleetpulse_token_cost(input, output, cached, p_in, p_out, p_cached): the price
-- of a window's tokens; cached input tokens (gen_ai.usage.cache_read.input_tokens,
-- part of the input tokens) at the cached price, the rest at the input price.
CREATE OR REPLACE FUNCTION fleetpulse_token_cost AS (input, output, cached, p_in, p_out, p_cached) ->
    ((input - cached) * p_in + cached * p_cached + output * p_out) / 1000000;

-- request_cost: per base window and model. cost is the tokens' price;
-- cost_per_request, cost_per_million_tokens (input and output), tokens_per_dollar;
-- cache_hit_rate (cached / input tokens) and cache_savings, what the cached
-- tokens would have cost more at the input price. NaN or inf where a
-- denominator is 0 (a window with no tokens, a free model).
CREATE OR REPLACE VIEW request_cost AS
SELECT s.window_start AS window_start, s.window_seconds AS window_seconds, s.model AS model,
       s.requests AS requests, s.input_tokens AS input_tokens, s.output_tokens AS output_tokens,
       s.cache_read_tokens AS cache_read_tokens, s.cache_hit_rate AS cache_hit_rate,
       fleetpulse_token_cost(s.input_tokens, s.output_tokens, s.cache_read_tokens, p.input_per_million,
                             p.output_per_million, p.cached_input_per_million) AS cost,
       cost / s.requests AS cost_per_request,
       cost / (s.input_tokens + s.output_tokens) * 1000000 AS cost_per_million_tokens,
       (s.input_tokens + s.output_tokens) / cost AS tokens_per_dollar,
       s.cache_read_tokens * (p.input_per_million - p.cached_input_per_million) / 1000000 AS cache_savings
FROM request_stats_model AS s
INNER JOIN model_prices AS p ON s.model = p.model;

-- request_cost_rollup: the same per 1 minute or 1 hour window (filter on grain)
-- and model, all nodes merged.
CREATE OR REPLACE VIEW request_cost_rollup AS
SELECT s.grain AS grain, s.window_start AS window_start, s.model AS model,
       s.requests AS requests, s.input_tokens AS input_tokens, s.output_tokens AS output_tokens,
       s.cache_read_tokens AS cache_read_tokens, s.cache_read_tokens / s.input_tokens AS cache_hit_rate,
       fleetpulse_token_cost(s.input_tokens, s.output_tokens, s.cache_read_tokens, p.input_per_million,
                             p.output_per_million, p.cached_input_per_million) AS cost,
       cost / s.requests AS cost_per_request,
       cost / (s.input_tokens + s.output_tokens) * 1000000 AS cost_per_million_tokens,
       (s.input_tokens + s.output_tokens) / cost AS tokens_per_dollar,
       s.cache_read_tokens * (p.input_per_million - p.cached_input_per_million) / 1000000 AS cache_savings
FROM
(
    SELECT grain, window_start, model, sum(requests) AS requests, sum(input_tokens) AS input_tokens,
           sum(output_tokens) AS output_tokens, sum(cache_read_tokens) AS cache_read_tokens
    FROM request_stats_rollup
    GROUP BY grain, window_start, model
) AS s
INNER JOIN model_prices AS p ON s.model = p.model;

-- gpu_cost: per GPU window of every grain ('base', '1m', '1h'): the GPU's time
-- (the window, in hours: a GPU costs its hourly price whether busy or not) at
-- its hourly price, plus its energy (gpu_windows.energy_joules, in kWh) at its
-- energy price. A node's price wins over its GPU type's.
CREATE OR REPLACE VIEW gpu_cost AS
SELECT g.grain AS grain, g.window_start AS window_start, g.window_seconds AS window_seconds, g.node AS node,
       g.gpu_uuid AS gpu_uuid, g.gpu_index AS gpu_index, g.gpu_name AS gpu_name,
       g.window_seconds / 3600 AS gpu_hours,
       ifNull(g.energy_joules, 0) / 3600000 AS energy_kwh,
       if(n.name != '', n.hourly, t.hourly) AS hourly_price,
       if(n.name != '', n.energy_per_kwh, t.energy_per_kwh) AS energy_price,
       gpu_hours * hourly_price AS time_cost,
       energy_kwh * energy_price AS energy_cost,
       time_cost + energy_cost AS gpu_cost
FROM
(
    SELECT 'base' AS grain, window_start, window_seconds, node, gpu_uuid, gpu_index, gpu_name, energy_joules
    FROM gpu_windows FINAL
    UNION ALL
    SELECT '1m' AS grain, window_start, window_seconds, node, gpu_uuid, gpu_index, gpu_name, energy_joules
    FROM gpu_windows_1m FINAL
    UNION ALL
    SELECT '1h' AS grain, window_start, window_seconds, node, gpu_uuid, gpu_index, gpu_name, energy_joules
    FROM gpu_windows_1h FINAL
) AS g
LEFT JOIN (SELECT name, hourly, energy_per_kwh FROM gpu_prices WHERE kind = 'node') AS n ON g.node = n.name
LEFT JOIN (SELECT name, hourly, energy_per_kwh FROM gpu_prices WHERE kind = 'gpu') AS t ON g.gpu_name = t.name
WHERE n.name != '' OR t.name != '';

-- gpu_request_cost: gpu_efficiency (011: the requests of each base window joined
-- with the GPU that served them) priced by gpu_cost: the GPU's cost per request
-- and output tokens per unit of GPU cost.
CREATE OR REPLACE VIEW gpu_request_cost AS
SELECT e.window_start AS window_start, e.node AS node, e.gpu AS gpu, e.gpu_uuid AS gpu_uuid,
       e.requests AS requests, e.output_tokens AS output_tokens, c.gpu_cost AS gpu_cost,
       c.gpu_cost / e.requests AS gpu_cost_per_request,
       e.output_tokens / c.gpu_cost AS output_tokens_per_dollar
FROM gpu_efficiency AS e
INNER JOIN (SELECT window_start, node, gpu_uuid, gpu_cost FROM gpu_cost WHERE grain = 'base') AS c
ON e.window_start = c.window_start AND e.node = c.node AND e.gpu_uuid = c.gpu_uuid;
