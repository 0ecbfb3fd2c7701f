"""tickpipe: Polygon market data -> Kafka -> processor -> Kafka -> ClickHouse.

This package holds what the services share: configuration, logging, metrics, Kafka helpers, the
`tickpipe` command line and the local stack. The services live beside it: producer/, processor/,
clickhouse/ (the sink, schema and queries) and simulator/.
"""

__version__ = "0.1.0"
