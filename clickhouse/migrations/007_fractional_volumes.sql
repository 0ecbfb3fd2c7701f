-- Day volume as Float64, like every other volume: Polygon's own examples send fractional `av`
-- (crypto minute bars on the stocks-shaped AM, and fractional stock volumes in REST and in the flat
-- files since their 2026 change to decimal sizes), which an UInt64 column refused: the row was dead-lettered.
-- Delta + ZSTD keeps the growing-by-day series small: 0.7 byte a row more than UInt64 with Delta on a
-- simulated session of second aggregates (Gorilla: 1.1, plain ZSTD: 1.0; docs/clickhouse.md).

ALTER TABLE {db}.aggregates MODIFY COLUMN IF EXISTS day_volume Float64 CODEC(Delta, ZSTD(1));
