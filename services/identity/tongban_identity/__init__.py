"""Tongban identity service."""
