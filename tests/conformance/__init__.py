"""Polygon's published example messages (polygon_examples.json, each with its source) and the
normalised event each must become, written out by hand from the examples and the contract."""
