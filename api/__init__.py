"""The read-model HTTP service: answers queries from Cassandra (and Qdrant)."""
