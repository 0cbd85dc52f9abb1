-- request_windows rows are split by the GPU that served the requests (gpu.id),
-- so requests can be joined with GPU windows on (window, node, GPU): see
-- gpu_efficiency in 011. (This file once also made materialized-view GPU
-- rollups; 010 drops them where they exist.)
ALTER TABLE request_windows ADD COLUMN IF NOT EXISTS gpu LowCardinality(String);
