"""Tongban registration service."""
