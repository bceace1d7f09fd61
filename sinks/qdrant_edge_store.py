"""The vector view on Qdrant Edge: Qdrant's own engine (segments, HNSW,
payload indexes, a write-ahead log) in-process, one shard per collection
under the state dir. Chosen with ``MURMUR_QDRANT_ENGINE=edge``.

qdrant-client's local mode (:mod:`sinks.qdrant_store`, the default without a
URL) is a Python re-implementation that scans every point; Edge runs the
server's code without a server. Both answer the same contract
(``tests/unit/sinks/test_vector_store_contract.py``): same points, same
isolation, same nearest-first order, same payloads.

Point ids are derived from memory ids, so an upsert of a redelivered memory
rewrites the same point.
"""

from __future__ import annotations

import threading
from pathlib import Path

import qdrant_edge as qe

from sinks.qdrant_store import payload_of
from streams.ids import point_uuid
from streams.settings import Settings
from streams.vectors import vector_of

# qdrant-edge-py 0.9.0 matches no boolean: MatchValue(True) finds nothing on a
# bool payload field, indexed or not (it arrives as the integer 1). The shard
# keeps a keyword copy of ``public`` to filter on; payloads come back without it.
VISIBILITY = "_visibility"

INDEXES = {
    "sim_id": qe.PayloadSchemaType.Keyword,
    "agent_id": qe.PayloadSchemaType.Keyword,
    "kind": qe.PayloadSchemaType.Keyword,
    VISIBILITY: qe.PayloadSchemaType.Keyword,
    "round": qe.PayloadSchemaType.Integer,
    "ts": qe.PayloadSchemaType.Integer,
    "importance": qe.PayloadSchemaType.Integer,
}


def _match(key: str, value: str) -> qe.FieldCondition:
    return qe.FieldCondition(key, match=qe.MatchValue(value))


def visibility_filter(sim_id: str, agent_id: str, include_public: bool) -> qe.Filter:
    """sim == sim AND (agent == agent OR (include_public AND public))."""
    if not include_public:
        return qe.Filter(must=[_match("sim_id", sim_id), _match("agent_id", agent_id)])
    return qe.Filter(must=[_match("sim_id", sim_id)],
                     should=[_match("agent_id", agent_id), _match(VISIBILITY, "public")])


class EdgeQdrantStore:
    local = True  # in-process: the API process that serves retrieval also runs the sink

    def __init__(self, settings: Settings, *, dim: int | None = None, collection: str | None = None) -> None:
        self.settings = settings
        self.dim = dim or settings.llm.embed_dim
        ns = f"{settings.namespace}_" if settings.namespace else ""
        self.collection = collection or f"{ns}{settings.qdrant_collection}"
        root = settings.qdrant_path or settings.state_dir / "qdrant-edge" / (settings.namespace or "live")
        self.path = Path(root) / self.collection
        self._shard: qe.EdgeShard | None = None
        # One shard object is shared by the API's request threads and its sink thread.
        self._lock = threading.Lock()

    def ensure_collection(self) -> None:
        if self._shard is not None:
            return
        with self._lock:
            if self._shard is not None:
                return
            config = qe.EdgeConfig(vectors=qe.EdgeVectorParams(size=self.dim, distance=qe.Distance.Cosine))
            if (self.path / "edge_config.json").exists():  # written by create
                shard = qe.EdgeShard.load(str(self.path), config)
            else:
                self.path.mkdir(parents=True, exist_ok=True)
                shard = qe.EdgeShard.create(str(self.path), config)
                for name, kind in INDEXES.items():
                    shard.update(qe.UpdateOperation.create_field_index(name, kind))
            self._shard = shard

    def upsert(self, memories: list[dict]) -> int:
        points = []
        for m in memories:
            vector = vector_of(m)
            if len(vector):
                payload = {**payload_of(m), VISIBILITY: "public" if m["public"] else "private"}
                points.append(qe.Point(str(point_uuid(m["memory_id"])), vector.tolist(), payload))
        if points:
            self.ensure_collection()
            with self._lock:
                self._shard.update(qe.UpdateOperation.upsert_points(points))
        return len(points)

    def search(self, *, sim_id: str, agent_id: str, vector: list[float], limit: int,
               include_public: bool) -> list[tuple[float, dict]]:
        self.ensure_collection()
        request = qe.QueryRequest(limit=limit, query=qe.Query.Nearest(list(vector)), with_payload=True,
                                  filter=visibility_filter(sim_id, agent_id, include_public))
        with self._lock:
            found = self._shard.query(request)
        return [(p.score, {k: v for k, v in (p.payload or {}).items() if k != VISIBILITY}) for p in found]

    def search_many(self, requests: list[dict]) -> list[list[tuple[float, dict]]]:
        if not requests:
            return []
        self.ensure_collection()
        batch = qe.QueryBatchRequest([
            qe.QueryRequest(limit=r["limit"], query=qe.Query.Nearest(list(r["vector"])), with_payload=True,
                            filter=visibility_filter(r["sim_id"], r["agent_id"], r["include_public"]))
            for r in requests])
        with self._lock:
            found = self._shard.query_batch(batch)
        return [[(p.score, {k: v for k, v in (p.payload or {}).items() if k != VISIBILITY}) for p in points]
                for points in found]

    def count(self, sim_id: str | None = None) -> int:
        self.ensure_collection()
        flt = qe.Filter(must=[_match("sim_id", sim_id)]) if sim_id is not None else None
        with self._lock:
            return self._shard.count(qe.CountRequest(exact=True, filter=flt))

    def close(self) -> None:
        with self._lock:
            if self._shard is not None:
                self._shard.flush()
                self._shard.close()
                self._shard = None
