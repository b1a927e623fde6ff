"""Routing: each accepted event becomes a projection per active grant."""
