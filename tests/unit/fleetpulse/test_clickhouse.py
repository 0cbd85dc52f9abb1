"""Driver errors become ours at the boundary: ClickHouseUnavailable (the worker
pauses and retries the batch) only for what waiting can fix. The texts are
ClickHouse's own, as chDB 26.9 and clickhouse-connect's HTTP client give them
(and older servers' wordings where they differ)."""

import pytest
from clickhouse_connect.driver import exceptions as ch_exc

from fleetpulse.clickhouse import error_code, ours
from fleetpulse.errors import ClickHouseError, ClickHouseUnavailable

WHERE = "chDB at /tmp/x"

TOO_MANY_PARTITIONS = (
    "Code: 252. DB::Exception: Too many partitions for single INSERT block (more than 100). The limit is "
    "controlled by 'max_partitions_per_insert_block' setting. Large number of partitions is a common "
    "misconception. It will lead to severe negative performance impact, including slow server startup, slow "
    "INSERT queries and slow SELECT queries. Recommended total number of partitions for a table is under "
    "1000..10000. Please note, that partitioning is not intended to speed up SELECT queries (ORDER BY key is "
    "sufficient to make range queries fast). Partitions are intended for data manipulation (DROP PARTITION, "
    "etc). (TOO_MANY_PARTS)")
TOO_MANY_PARTS = (
    "Code: 252. DB::Exception: Too many parts (2 with average size of 345.00 B) in table 'default.p "
    "(7a9b1039-713f-420f-8b18-ddf447430e2d)'. Merges are processing significantly slower than inserts. "
    "(TOO_MANY_PARTS)")
QUERY_MEMORY = ("Code: 241. DB::Exception: Query memory limit exceeded: would use 5.07 MiB (attempt to allocate "
                "chunk of 5.00 MiB), maximum: 976.56 KiB: While executing AggregatingTransform. "
                "(MEMORY_LIMIT_EXCEEDED)")
OLD_QUERY_MEMORY = ("Code: 241. DB::Exception: Memory limit (for query) exceeded: would use 9.32 GiB (attempt to "
                    "allocate chunk of 4219172 bytes), maximum: 9.31 GiB. (MEMORY_LIMIT_EXCEEDED)")
USER_MEMORY = ("Code: 241. DB::Exception: User memory limit exceeded: would use 5.07 MiB (attempt to allocate chunk "
               "of 5.00 MiB), maximum: 976.56 KiB. OvercommitTracker decision: Query was selected to stop by "
               "OvercommitTracker: While executing AggregatingTransform. (MEMORY_LIMIT_EXCEEDED)")
TOTAL_MEMORY = ("Code: 241. DB::Exception: Memory limit (total) exceeded: would use 12.05 GiB (attempt to allocate "
                "chunk of 4194304 bytes), maximum: 12.00 GiB. (MEMORY_LIMIT_EXCEEDED)")
TIMEOUT = "Code: 159. DB::Exception: Timeout exceeded: elapsed 1002.293 ms, maximum: 1000.000 ms. (TIMEOUT_EXCEEDED)"


def over_http(text: str) -> str:
    """How clickhouse-connect's HTTP client (1.12) words a server's error: an
    OperationalError instead of a DatabaseError once it has retried."""
    return (f"Received ClickHouse exception, code: {text[6:9]}, server response: {text} (version 25.8.1.1) "
            "(for url http://localhost:8123/)")


@pytest.mark.parametrize("text", [TOO_MANY_PARTITIONS, over_http(TOO_MANY_PARTITIONS), QUERY_MEMORY,
                                  OLD_QUERY_MEMORY, over_http(QUERY_MEMORY)])
def test_an_error_under_a_retryable_code_that_no_wait_fixes_is_not_unavailable(text):
    assert error_code(ch_exc.DatabaseError(text)) in (241, 252)
    for driver_error in (ch_exc.DatabaseError, ch_exc.OperationalError, ch_exc.StreamFailureError):
        mapped = ours(driver_error(text), WHERE)
        assert type(mapped) is ClickHouseError, (driver_error, mapped)
        assert str(mapped).startswith(f"{WHERE}: ") and "Code: " in str(mapped) and "\n" not in str(mapped)


@pytest.mark.parametrize("text", [TOO_MANY_PARTS, over_http(TOO_MANY_PARTS), USER_MEMORY, TOTAL_MEMORY, TIMEOUT])
def test_overload_is_unavailable(text):
    mapped = ours(ch_exc.DatabaseError(text), WHERE)
    assert type(mapped) is ClickHouseUnavailable and f"{WHERE} is overloaded: " in str(mapped), mapped
    assert type(ours(ch_exc.StreamFailureError(text), WHERE)) is ClickHouseUnavailable


def test_an_unreachable_server_is_unavailable():
    refused = ch_exc.OperationalError("Error connecting to ClickHouse: [Errno 111] Connection refused")
    assert str(ours(refused, WHERE)) == f"{WHERE} is not reachable (connection refused)"


@pytest.mark.parametrize("driver_error", [ch_exc.DatabaseError, ch_exc.StreamFailureError])
def test_a_statement_clickhouse_refuses_is_an_error(driver_error):
    text = "Code: 16. DB::Exception: No such column nope in table default.t. (NO_SUCH_COLUMN_IN_TABLE)"
    assert type(ours(driver_error(text), WHERE)) is ClickHouseError
