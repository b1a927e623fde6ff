"""Tongban gateway service."""
