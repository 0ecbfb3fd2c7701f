"""The tickpipe processor: RAW_TOPIC -> validate, normalise, filter -> FILTERED_TOPIC, exactly once.

Start at docs/processor.md; the module map is there.
"""
