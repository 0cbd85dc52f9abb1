-- What each tenant costs: tenant_windows (015) gains the cached input tokens
-- (gen_ai.usage.cache_read.input_tokens, 014) so a tenant's tokens are priced
-- exactly like its model's in request_cost (016): cached input at the cached
-- price, the rest at the input price. Rows written before this migration have
-- 0 cached tokens (the default): their input is priced in full, which is what
-- a request without the field costs anyway.
ALTER TABLE tenant_windows ADD COLUMN IF NOT EXISTS cache_read_tokens UInt64 AFTER output_tokens;

-- Exact usage per (window, tenant, model): every partial row summed.
CREATE OR REPLACE VIEW tenant_stats AS
SELECT
    window_start, window_seconds, tenant, model,
    sum(requests) AS requests,
    sum(errors) AS errors,
    errors / requests AS error_rate,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cache_read_tokens) AS cache_read_tokens
FROM tenant_windows
GROUP BY window_start, window_seconds, tenant, model;

-- tenant_cost: per window, tenant and model, the tokens' price from
-- model_prices (016); models without a price are left out, never priced at 0.
-- Sum it over models (and windows) for a tenant's bill.
CREATE OR REPLACE VIEW tenant_cost AS
SELECT t.window_start AS window_start, t.window_seconds AS window_seconds, t.tenant AS tenant, t.model AS model,
       t.requests AS requests, t.errors AS errors, t.input_tokens AS input_tokens, t.output_tokens AS output_tokens,
       t.cache_read_tokens AS cache_read_tokens,
       fleetpulse_token_cost(t.input_tokens, t.output_tokens, t.cache_read_tokens, p.input_per_million,
                             p.output_per_million, p.cached_input_per_million) AS cost,
       cost / t.requests AS cost_per_request
FROM tenant_stats AS t
INNER JOIN model_prices AS p ON t.model = p.model;
