-- Trade conditions as data: per condition code, whether a trade with it updates a bar's open/close,
-- high/low and volume under the consolidated (SIP) rules of Polygon's /v3/reference/conditions
-- (`update_rules.consolidated`). Bars built from stock trades (006_bars_by_source.sql) read this table
-- at every insert, so a refresh takes effect with the next batch; a code not in the table counts as a
-- regular trade (updates everything). The reference-data load refreshes the same table from the API
-- (origin 'api'); ReplacingMergeTree(updated_at) keeps the newest row per id: read it with FINAL.
--
-- The built-in default set below (origin 'built-in') is the stocks `sale_condition` set in v3 numbering.
-- Polygon publishes no full copy of the response in a repository: ids 1 and 2 are as in Polygon's own
-- client examples (polygon-io/client-go rest/reference_test.go, client-python .polygon/rest.json);
-- the other rules were transcribed from the conditions API by a third party and cross-checked against
-- the legacy glossary (docs/clickhouse.md, "Trade conditions"). Ids that carry no trade rule (short
-- sale restriction and financial status indicators) are not listed and so count as regular.

CREATE TABLE IF NOT EXISTS {db}.trade_conditions
(
    id                 UInt16,
    name               String,
    type               LowCardinality(String) DEFAULT 'sale_condition',
    updates_open_close Bool,
    updates_high_low   Bool,
    updates_volume     Bool,
    origin             LowCardinality(String) DEFAULT 'api',
    updated_at         DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY id
SETTINGS non_replicated_deduplication_window = 1000;

INSERT INTO {db}.trade_conditions (id, name, type, updates_open_close, updates_high_low, updates_volume, origin, updated_at)
SELECT id, name, type, oc, hl, vol, 'built-in', toDateTime64('2000-01-01 00:00:00', 3, 'UTC')
FROM values('id UInt16, name String, type String, oc Bool, hl Bool, vol Bool',
    (0, 'Regular Sale', 'sale_condition', true, true, true),
    (1, 'Acquisition', 'sale_condition', true, true, true),
    (2, 'Average Price Trade', 'sale_condition', false, false, true),
    (3, 'Automatic Execution', 'sale_condition', true, true, true),
    (4, 'Bunched Trade', 'sale_condition', true, true, true),
    (5, 'Bunched Sold Trade', 'sale_condition', false, true, true),
    (6, 'CAP Election', 'sale_condition', true, true, true),
    (7, 'Cash Sale', 'sale_condition', false, false, true),
    (8, 'Closing Prints', 'sale_condition', true, true, true),
    (9, 'Cross Trade', 'sale_condition', true, true, true),
    (10, 'Derivatively Priced', 'sale_condition', false, true, true),
    (11, 'Distribution', 'sale_condition', true, true, true),
    (12, 'Form T/Extended Hours', 'sale_condition', false, false, true),
    (13, 'Extended Hours (Sold Out Of Sequence)', 'sale_condition', false, false, true),
    (14, 'Intermarket Sweep', 'sale_condition', true, true, true),
    (15, 'Market Center Official Close', 'sale_condition', false, false, false),
    (16, 'Market Center Official Open', 'sale_condition', false, false, false),
    (17, 'Market Center Opening Trade', 'sale_condition', false, true, true),
    (18, 'Market Center Reopening Trade', 'sale_condition', true, true, true),
    (19, 'Market Center Closing Trade', 'sale_condition', true, true, true),
    (20, 'Next Day', 'sale_condition', false, false, true),
    (21, 'Price Variation Trade', 'sale_condition', false, false, true),
    (22, 'Prior Reference Price', 'sale_condition', false, true, true),
    (23, 'Rule 155 Trade (AMEX)', 'sale_condition', true, true, true),
    (24, 'Rule 127 (NYSE Only)', 'sale_condition', true, true, true),
    (25, 'Opening Prints', 'sale_condition', true, true, true),
    (27, 'Stopped Stock (Regular Trade)', 'sale_condition', true, true, true),
    (28, 'Re-Opening Prints', 'sale_condition', true, true, true),
    (29, 'Seller', 'sale_condition', false, false, true),
    (30, 'Sold Last', 'sale_condition', true, true, true),
    (31, 'Sold Last and Stopped Stock', 'sale_condition', true, true, true),
    (32, 'Sold (Out Of Sequence)', 'sale_condition', false, true, true),
    (33, 'Sold (Out of Sequence) and Stopped Stock', 'sale_condition', false, true, true),
    (34, 'Split Trade', 'sale_condition', true, true, true),
    (35, 'Stock Option', 'sale_condition', true, true, true),
    (36, 'Yellow Flag Regular Trade', 'sale_condition', true, true, true),
    (37, 'Odd Lot Trade', 'sale_condition', false, false, true),
    (38, 'Corrected Consolidated Close (per listing market)', 'sale_condition', true, true, false),
    (41, 'Trade Thru Exempt', 'trade_thru_exempt', true, true, true),
    (52, 'Contingent Trade', 'sale_condition', false, false, true),
    (53, 'Qualified Contingent Trade', 'sale_condition', false, false, true),
    (55, 'Opening Reopening Trade Detail', 'sale_condition', true, true, true)
)
WHERE (SELECT count() FROM {db}.trade_conditions) = 0;
