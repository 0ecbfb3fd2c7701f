-- needs-merge-tree-setting: merge_selector_base
-- Wider merges for the tables the sink writes all day: `merge_selector_base` 10 instead of 5.
--
-- ClickHouse's merge selector joins parts of similar size about `merge_selector_base` at a time.
-- A larger base makes the merge tree wider and shallower: each row is rewritten fewer times on its
-- way into a large part, for more parts alive at any moment. Measured in 30-minute soaks at
-- 20k events/s, back to back (`python -m bench soak`, docs/benchmarks.md "Wider merges"): rows
-- merged 331M -> 150-152M and the merge threads' CPU 162 -> 79 s over minutes 5-30, the sink's
-- CPU 12-13% lower (594 -> 514-523 s), the same latency; up to 62 active parts instead of 31, and
-- the saved queries at the end 5-38% slower over them. Existing parts follow the new rule from now.
--
-- A server whose ClickHouse has no such setting would refuse the statements: the first line above
-- makes the migration runner skip this file there (unrecorded: it is tried again at the next start).
ALTER TABLE {db}.trades MODIFY SETTING merge_selector_base = 10;
ALTER TABLE {db}.quotes MODIFY SETTING merge_selector_base = 10;
ALTER TABLE {db}.aggregates MODIFY SETTING merge_selector_base = 10;
ALTER TABLE {db}.bars MODIFY SETTING merge_selector_base = 10;
ALTER TABLE {db}.latest MODIFY SETTING merge_selector_base = 10;
