"""tickpipe: Polygon market data -> Kafka -> processor -> Kafka -> ClickHouse.

The core layer: what every service shares (the wire contract, configuration, logging, metrics, Kafka
and process helpers). It imports no service. The services live beside it (simulator/, producer/,
processor/, clickhouse/), and the apps above them (apps/: the `tickpipe` command, the local stack,
the demo); docs/architecture.md has the map.
"""

__version__ = "0.1.0"
