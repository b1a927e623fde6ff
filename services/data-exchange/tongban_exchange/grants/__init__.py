"""Grants: which department receives which fields of which dataset, how, and why."""
