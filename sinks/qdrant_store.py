"""The vector view: one Qdrant collection of memory embeddings.

Local in-process mode (files under ``state_dir/qdrant``) by default, a
server when ``MURMUR_QDRANT_URL`` is set. Point ids are derived from memory
ids, so an upsert of a redelivered memory rewrites the same point.

Isolation is enforced in the query, not by the caller: a search for agent A
matches A's own memories plus, if asked, public ones, never another agent's
private memories.
"""

from __future__ import annotations

import threading
import warnings

from qdrant_client import QdrantClient, models

from streams.ids import point_uuid
from streams.settings import Settings
from streams.vectors import vector_of

PAYLOAD_INDEXES = {
    "sim_id": models.PayloadSchemaType.KEYWORD,
    "agent_id": models.PayloadSchemaType.KEYWORD,
    "kind": models.PayloadSchemaType.KEYWORD,
    "public": models.PayloadSchemaType.BOOL,
    "round": models.PayloadSchemaType.INTEGER,
    "ts": models.PayloadSchemaType.INTEGER,
    "importance": models.PayloadSchemaType.INTEGER,
}


def payload_of(memory: dict) -> dict:
    return {
        "memory_id": memory["memory_id"],
        "sim_id": memory["sim_id"],
        "agent_id": memory["agent_id"],
        "kind": memory["kind"],
        "public": memory["public"],
        "importance": memory["importance"],
        "round": memory["round"],
        "ts": memory["ts"],
        "content": memory["content"],
    }


def visibility_filter(sim_id: str, agent_id: str, include_public: bool) -> models.Filter:
    """sim == sim AND (agent == agent OR (include_public AND public))."""
    sim = models.FieldCondition(key="sim_id", match=models.MatchValue(value=sim_id))
    own = models.FieldCondition(key="agent_id", match=models.MatchValue(value=agent_id))
    if not include_public:
        return models.Filter(must=[sim, own])
    public = models.FieldCondition(key="public", match=models.MatchValue(value=True))
    return models.Filter(must=[sim], should=[own, public])


class QdrantStore:
    def __init__(self, settings: Settings, *, dim: int | None = None, collection: str | None = None) -> None:
        self.settings = settings
        self.dim = dim or settings.llm.embed_dim
        ns = f"{settings.namespace}_" if settings.namespace else ""
        self.collection = collection or f"{ns}{settings.qdrant_collection}"
        if settings.qdrant_url:
            key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
            self.client = QdrantClient(url=settings.qdrant_url, api_key=key, timeout=10)
        else:
            path = settings.qdrant_path or settings.state_dir / "qdrant" / (settings.namespace or "live")
            path.mkdir(parents=True, exist_ok=True)
            self.client = QdrantClient(path=str(path))
        # Local mode is not thread-safe; the API reads while its sink thread writes.
        self._lock = threading.Lock()
        self._ready = False

    @property
    def local(self) -> bool:
        return self.settings.qdrant_url is None

    def ensure_collection(self) -> None:
        if self._ready:
            return
        with self._lock:
            if not self.client.collection_exists(self.collection):
                self.client.create_collection(
                    self.collection,
                    vectors_config=models.VectorParams(size=self.dim, distance=models.Distance.COSINE),
                )
            with warnings.catch_warnings():
                # Local mode ignores payload indexes (and says so); a server uses them.
                warnings.simplefilter("ignore", UserWarning)
                for name, kind in PAYLOAD_INDEXES.items():
                    self.client.create_payload_index(self.collection, name, kind)
            self._ready = True

    def upsert(self, memories: list[dict]) -> int:
        points = [
            models.PointStruct(id=point_uuid(m["memory_id"]), vector=vector_of(m).tolist(), payload=payload_of(m))
            for m in memories
            if len(vector_of(m))
        ]
        if points:
            self.ensure_collection()
            with self._lock:
                self.client.upsert(self.collection, points=points, wait=True)
        return len(points)

    def search(self, *, sim_id: str, agent_id: str, vector: list[float], limit: int,
               include_public: bool) -> list[tuple[float, dict]]:
        self.ensure_collection()
        with self._lock:
            res = self.client.query_points(
                self.collection, query=vector, query_filter=visibility_filter(sim_id, agent_id, include_public),
                limit=limit, with_payload=True,
            )
        return [(p.score, p.payload) for p in res.points]

    def search_many(self, requests: list[dict]) -> list[list[tuple[float, dict]]]:
        if not requests:
            return []
        self.ensure_collection()
        batch = [models.QueryRequest(query=list(r["vector"]), limit=r["limit"], with_payload=True,
                                     filter=visibility_filter(r["sim_id"], r["agent_id"], r["include_public"]))
                 for r in requests]
        with self._lock:
            found = self.client.query_batch_points(self.collection, requests=batch)
        return [[(p.score, p.payload) for p in res.points] for res in found]

    def count(self, sim_id: str | None = None) -> int:
        self.ensure_collection()
        flt = None
        if sim_id is not None:
            flt = models.Filter(must=[models.FieldCondition(key="sim_id", match=models.MatchValue(value=sim_id))])
        with self._lock:
            return self.client.count(self.collection, count_filter=flt, exact=True).count

    def delete_sim(self, sim_id: str) -> int:
        n = self.count(sim_id)
        flt = models.Filter(must=[models.FieldCondition(key="sim_id", match=models.MatchValue(value=sim_id))])
        with self._lock:
            self.client.delete(self.collection, points_selector=models.FilterSelector(filter=flt), wait=True)
        return n

    def close(self) -> None:
        with self._lock:
            self.client.close()
