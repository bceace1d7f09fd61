"""The read model's side of ``murmur sim delete`` (streams/sim_delete.py):
a simulation's rows in Cassandra and its points in the vector store."""

from __future__ import annotations

from sinks.cassandra_delete import delete_sim
from sinks.cassandra_store import CassandraStore
from sinks.vector_stores import open_vector_store
from streams.errors import MurmurError
from streams.settings import Settings


class SimViews:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def delete_rows(self, sim_id: str, agents: set[str]) -> dict[str, int]:
        store = CassandraStore(self.settings)
        try:
            return delete_sim(store, sim_id, more_agents=agents)
        finally:
            store.close()

    def delete_vectors(self, sim_id: str) -> int:
        try:
            vectors = open_vector_store(self.settings)
        except Exception as exc:  # in-process engines: another process holds the files
            raise MurmurError(f"vector store: {exc} (the API owns the in-process store: stop it first); "
                              "the rest is deleted, run the delete again") from exc
        try:
            return vectors.delete_sim(sim_id)
        finally:
            vectors.close()
