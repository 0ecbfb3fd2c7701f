"""The `tickpipe` command: one CLI over every service and app (cli.py), and which of them this
environment can run (areas.py)."""
