"""Tongban data-exchange service."""
