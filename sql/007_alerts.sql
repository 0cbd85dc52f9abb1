-- Alert events, as sent to the alerts topic (streams/alerting/evaluator.py).
CREATE TABLE IF NOT EXISTS alerts
(
    timestamp    DateTime64(3, 'UTC'),
    alert_name   LowCardinality(String),
    status       LowCardinality(String),
    severity     LowCardinality(String),
    fingerprint  String,
    labels       Map(String, String),
    annotations  Map(String, String),
    starts_at    DateTime64(3, 'UTC'),
    ends_at      Nullable(DateTime64(3, 'UTC')),
    value        Float64
)
ENGINE = MergeTree
ORDER BY (alert_name, fingerprint, timestamp)
TTL toDateTime(timestamp) + INTERVAL 365 DAY;

-- Silences (`fleetpulse silence add|list|expire`). Expiring re-inserts the id
-- with ends_at = now; the newest version of an id wins.
CREATE TABLE IF NOT EXISTS silences
(
    id          String,
    matchers    Map(String, String),
    starts_at   DateTime64(3, 'UTC'),
    ends_at     DateTime64(3, 'UTC'),
    comment     String,
    updated_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY id;
