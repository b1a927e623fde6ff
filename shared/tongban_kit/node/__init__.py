"""Run a whole node on one machine: the launcher behind ``tongban node up``."""
