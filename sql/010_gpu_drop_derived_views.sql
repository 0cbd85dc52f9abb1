-- The view of 008 (gpu_windows with a window-size parameter) and the
-- materialized-view rollups of 009 go: their sample counts and averages could
-- count a replayed sample twice. 011 creates written tables in their place,
-- and the worker refills them from gpu_samples.
-- DROP TABLE also drops a view, and does not fail on a table of the same name,
-- so this file is safe to run again after a crash (DROP VIEW on a table fails).
DROP TABLE IF EXISTS gpu_windows_1m_mv;
DROP TABLE IF EXISTS gpu_windows_1h_mv;
DROP TABLE IF EXISTS gpu_windows_1m;
DROP TABLE IF EXISTS gpu_windows_1h;
DROP TABLE IF EXISTS gpu_efficiency;
DROP TABLE IF EXISTS gpu_windows;
