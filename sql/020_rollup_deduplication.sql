-- The rollups deduplicate too. An insert into request_windows that ClickHouse
-- drops by its insert_deduplication_token (a retry after an ambiguous failure:
-- the insert landed, the answer was lost) still pushed its block through both
-- materialized views, so the rollups counted the retried batch twice while
-- request_windows held it once. The worker's inserts carry
-- deduplicate_blocks_in_dependent_materialized_views = 1 (fleetpulse/clickhouse.py):
-- each view's block then gets a token derived from the insert's, which the
-- rollup checks against its own window of recent tokens, set here like the base
-- table's. A retry whose base insert is dropped while a crash had left the
-- rollups without it fills them in; one they already hold is dropped.
ALTER TABLE request_windows_1m MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE request_windows_1h MODIFY SETTING non_replicated_deduplication_window = 10000;
