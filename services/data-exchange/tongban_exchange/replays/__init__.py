"""Replays: an operator sends a dataset again to a department from a point in time or sequence."""
