-- The rollups keep their parts compact (every column in one file) up to
-- 256 MiB. They are AggregatingMergeTree, which merges horizontally: all
-- columns of all the parts merged at once, and a wide part is a file per
-- stream (three per Map column), each read through buffers of its own. At
-- high cardinality, merges of six wide rollup parts each held ~165 MiB in chDB;
-- compact, ~42 MiB (bench/, 100,000 series: chDB's tracked peak 494-516 MiB
-- against 173-250 MiB, at the same CPU per event). Larger parts, which months
-- of history merge into, are wide again, so a query reads only its columns.
ALTER TABLE request_windows_1m MODIFY SETTING min_bytes_for_wide_part = 268435456;
ALTER TABLE request_windows_1h MODIFY SETTING min_bytes_for_wide_part = 268435456;
