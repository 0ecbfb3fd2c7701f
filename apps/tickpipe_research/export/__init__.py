"""`tickpipe export`: the Parquet cold tier on S3, written by ClickHouse (see docs/research.md)."""
