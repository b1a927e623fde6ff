"""Logs, trace context and metrics shared by every service."""
