"""The message log: a hash chain of every delivery, publish and query, with checkpoints."""
