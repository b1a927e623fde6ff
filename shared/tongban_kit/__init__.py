"""Tongban platform kit: the common ground every service stands on."""
