-- Day volume as Float64, like every other volume: Polygon's own examples send fractional `av`
-- (crypto minute bars on the stocks-shaped AM, and fractional stock volumes in REST and in the flat
-- files since their 2026 change to decimal sizes), which an UInt64 column refused for the whole batch.
-- Gorilla + ZSTD keeps the growing-by-day series small (docs/clickhouse.md has the bytes per row).

ALTER TABLE {db}.aggregates MODIFY COLUMN IF EXISTS day_volume Float64 CODEC(Gorilla, ZSTD(1));
