-- Every websocket gap the producer reported and what `tickpipe repair` did about it: one row per
-- gap (`gap_id` = feed:from_ms), newest version wins (read with FINAL). `state` is `repairing` while
-- REST is fetched and `repaired` once the restored events were committed to RAW_TOPIC, with
-- `rows_restored` (events REST had that the live feed had not delivered).
CREATE TABLE IF NOT EXISTS {db}.feed_gaps
(
    gap_id        String,
    feed          LowCardinality(String),
    gap_from      DateTime64(3, 'UTC'),
    gap_to        DateTime64(3, 'UTC'),
    topics        Array(String),
    why           String,
    state         Enum8('repairing' = 1, 'repaired' = 2),
    rows_restored UInt64,
    updated       DateTime64(3, 'UTC'),
    version       UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY gap_id
SETTINGS non_replicated_deduplication_window = 10000;
