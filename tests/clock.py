"""Event times for tests that write to ClickHouse: recent enough to be inside
every retention TTL, and aligned to the hour so windows are reproducible."""

import time

#: The start of the hour one day ago.
RECENT_HOUR = float((int(time.time()) // 3600 - 24) * 3600)
