-- Leaves nothing behind: it drops what 008 and 009 made before they were cut
-- down to what lasts, in databases migrated back then: the gpu_windows view
-- with a window-size parameter, the materialized-view rollups gpu_windows_1m/1h
-- and gpu_efficiency. Their sample counts and averages could count a replayed
-- sample twice; 011 creates written tables in their place, and the worker
-- refills them from gpu_samples. In a new database every statement is a no-op.
-- The version stays taken so that no database runs this file's number twice.
-- DROP TABLE also drops a view, and does not fail on a table of the same name,
-- so this file is safe to run again after a crash (DROP VIEW on a table fails).
DROP TABLE IF EXISTS gpu_windows_1m_mv;
DROP TABLE IF EXISTS gpu_windows_1h_mv;
DROP TABLE IF EXISTS gpu_windows_1m;
DROP TABLE IF EXISTS gpu_windows_1h;
DROP TABLE IF EXISTS gpu_efficiency;
DROP TABLE IF EXISTS gpu_windows;
