"""The read-only query path: `tickpipe query`, saved queries, and the endpoint a running sink serves."""
