-- server-only: a ClickHouse server's SQL access management (chDB has no users; there the query
-- guard and readonly=1 sessions are the enforcement, docs/security.md).
-- The role `tickpipe_reader` may SELECT tickpipe's tables and nothing else: no FILE, URL, S3,
-- REMOTE, MYSQL, POSTGRES, ... source grants (so no table function reaches outside), no KILL QUERY
-- on others' queries, no SYSTEM, no INSERT/ALTER/CREATE, no access management. Its settings profile
-- fixes readonly=1 and the query limits; only max_execution_time may be lowered (Grafana's
-- ClickHouse plugin sets it on every query), never raised. The defaults match the query path's
-- (QUERY_MAX_*); an operator changes them with ALTER SETTINGS PROFILE ... MODIFY SETTINGS.
-- `tickpipe migrate` creates the login user for it when CLICKHOUSE_READER_PASSWORD is set.

CREATE SETTINGS PROFILE IF NOT EXISTS tickpipe_reader_limits SETTINGS
    readonly = 1 CONST,
    max_execution_time = 60 MAX 60 CHANGEABLE_IN_READONLY,
    max_memory_usage = 1073741824 CONST,
    max_result_rows = 10000000 CONST,
    max_result_bytes = 268435456 CONST,
    result_overflow_mode = 'throw' CONST,
    allow_introspection_functions = 0 CONST,
    allow_ddl = 0 CONST;

CREATE ROLE IF NOT EXISTS tickpipe_reader SETTINGS PROFILE 'tickpipe_reader_limits';

GRANT SELECT ON {db}.* TO tickpipe_reader;
