"""Where events land: Cassandra tables and Qdrant vectors, written
idempotently (every write keyed by event id)."""
