"""The local real stack: a Kafka broker from the official jars, moto's S3 server, the simulator.

Started by `tickpipe local up` for the demo and by the test fixtures; no Docker needed.
"""
