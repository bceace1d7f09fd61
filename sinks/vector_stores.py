"""Which vector view a process opens: a Qdrant server when
``MURMUR_QDRANT_URL`` is set, else in-process, by ``MURMUR_QDRANT_ENGINE``
(qdrant-client's local mode, or Qdrant Edge). Every one answers the same
contract (tests/unit/sinks/test_vector_store_contract.py)."""

from __future__ import annotations

from typing import Protocol

from streams.settings import Settings


class VectorStore(Protocol):
    local: bool  # in-process: one process owns the files (the API, which also runs the sink)

    def ensure_collection(self) -> None: ...
    def upsert(self, memories: list[dict]) -> int: ...
    def search(self, *, sim_id: str, agent_id: str, vector: list[float], limit: int,
               include_public: bool) -> list[tuple[float, dict]]: ...
    # Many searches (keyword arguments of ``search`` each) in one call: one
    # planned batch in the engine, results in the order asked.
    def search_many(self, requests: list[dict]) -> list[list[tuple[float, dict]]]: ...
    def count(self, sim_id: str | None = None) -> int: ...
    # Every point of one simulation removed (`murmur sim delete`); how many.
    def delete_sim(self, sim_id: str) -> int: ...
    def close(self) -> None: ...


def open_vector_store(settings: Settings, **kw) -> VectorStore:
    if settings.qdrant_url is None and settings.qdrant_engine == "edge":
        from sinks.qdrant_edge_store import EdgeQdrantStore

        return EdgeQdrantStore(settings, **kw)
    from sinks.qdrant_store import QdrantStore

    return QdrantStore(settings, **kw)
