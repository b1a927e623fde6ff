"""The catalogue: every dataset (event type or record dataset), its owner, schema and sharing."""
