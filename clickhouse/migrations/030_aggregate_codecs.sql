-- Aggregate prices with Delta before ZSTD, and larger compression blocks, for `aggregates`.
--
-- Prices stay Float64, exactly what Polygon sent. Delta on a Float64 works on its bits as an integer:
-- for positive prices that ordering is the numeric one, so in (symbol, timestamp) order a slowly
-- moving series (day_vwap above all, then vwap and OHLC) leaves small differences that ZSTD packs
-- tighter than the raw values. Larger blocks (1 MiB to 4 MiB instead of 64 KiB to 1 MiB) give ZSTD
-- more of a column at once. Measured on a simulated hour of second aggregates (360k rows, after
-- OPTIMIZE FINAL, `python -m bench.sink storage`): 16.6 -> 13.2 bytes a row, with the same insert
-- and merge CPU (ZSTD(9) would give 12.4 bytes for twice the insert CPU: not chosen; Gorilla and FPC
-- made these columns larger; docs/clickhouse.md has the table). Volumes keep plain ZSTD(1) (Delta and
-- higher levels made them larger). Existing parts keep their codecs until merged; new parts and
-- merges use these.

ALTER TABLE {db}.aggregates MODIFY COLUMN IF EXISTS open Float64 CODEC(Delta, ZSTD(3));
ALTER TABLE {db}.aggregates MODIFY COLUMN IF EXISTS high Float64 CODEC(Delta, ZSTD(3));
ALTER TABLE {db}.aggregates MODIFY COLUMN IF EXISTS low Float64 CODEC(Delta, ZSTD(3));
ALTER TABLE {db}.aggregates MODIFY COLUMN IF EXISTS close Float64 CODEC(Delta, ZSTD(3));
ALTER TABLE {db}.aggregates MODIFY COLUMN IF EXISTS vwap Float64 CODEC(Delta, ZSTD(3));
ALTER TABLE {db}.aggregates MODIFY COLUMN IF EXISTS day_vwap Float64 CODEC(Delta, ZSTD(3));
ALTER TABLE {db}.aggregates MODIFY SETTING min_compress_block_size = 1048576, max_compress_block_size = 4194304;
