"""The vector view on Qdrant Edge: Qdrant's own engine (segments, HNSW,
payload indexes, a write-ahead log) in-process, one shard per collection
under the state dir. The default in-process engine (docs/adr/0006).

qdrant-client's local mode (:mod:`sinks.qdrant_store`) is a Python
re-implementation that scans every point; Edge runs the server's code without
a server. Both answer the same contract
(``tests/unit/sinks/test_vector_store_contract.py``): same points, same
isolation, same nearest-first order, same payloads.

The HNSW index is built in a child process (:mod:`sinks.edge_index`): once
``qdrant_edge_index_after`` points are outside the index, the writer copies
the flushed shard into a new generation folder, the child indexes the copy,
and the store opens it, replays the writes it took meanwhile and swaps it in.
Searches never wait for a build; writes wait only while the shard is copied
and while the new generation is opened. ``<collection>.current`` names the
live generation, so a crash mid-build leaves the previous one in use.

Point ids are derived from memory ids, so an upsert of a redelivered memory
rewrites the same point.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Callable

import qdrant_edge as qe

from sinks import edge_index
from sinks.qdrant_store import payload_of
from streams.ids import point_uuid
from streams.metrics import VECTOR_INDEX_BUILDS, VECTOR_INDEX_SECONDS
from streams.settings import Settings
from streams.vectors import vector_of

log = logging.getLogger(__name__)

# Where a memory is public, the shard keeps its sim in ``_public_in``; private
# memories have no such field. Searches run as two queries (see ``search``):
# the sim's public memories through the HNSW graph Qdrant builds for each
# value of this field, and the agent's own memories exactly. (A bool would not
# do: qdrant-edge-py 0.9.0 never matches MatchValue(True) on one.)
PUBLIC_IN = "_public_in"
LEGACY_VISIBILITY = "_visibility"  # the keyword shards before _public_in kept
HIDDEN = frozenset({PUBLIC_IN, LEGACY_VISIBILITY})

# Only the fields searches filter on. The graph is built per value of
# ``_public_in`` (HNSW m=0, payload_m: one graph per simulation's public
# memories), not over the whole shard: a search of A's view walks only
# points it may see. Measured at 100k (B6): a 10.8 s build and recall@10
# 0.96, against 74-208 s and 0.89-0.98 for a whole-shard graph walked under
# the visibility filter.
INDEXES = {
    "sim_id": qe.KeywordIndexParams(is_tenant=True, enable_hnsw=False),
    "agent_id": qe.KeywordIndexParams(enable_hnsw=False),
    PUBLIC_IN: qe.KeywordIndexParams(enable_hnsw=True),
}
# A failed build is tried again after this long (its error is kept).
RETRY_AFTER_S = 60.0


def _match(key: str, value: str) -> qe.FieldCondition:
    return qe.FieldCondition(key, match=qe.MatchValue(value))


def own_filter(sim_id: str, agent_id: str) -> qe.Filter:
    return qe.Filter(must=[_match("sim_id", sim_id), _match("agent_id", agent_id)])


def public_filter(sim_id: str) -> qe.Filter:
    return qe.Filter(must=[_match(PUBLIC_IN, sim_id)])


def _points(memories: list[dict]) -> list[qe.Point]:
    points = []
    for m in memories:
        vector = vector_of(m)
        if len(vector):
            payload = {**payload_of(m), **({PUBLIC_IN: m["sim_id"]} if m["public"] else {})}
            points.append(qe.Point(str(point_uuid(m["memory_id"])), vector.tolist(), payload))
    return points


def _strip(found) -> list[tuple[float, dict]]:
    return [(p.score, {k: v for k, v in (p.payload or {}).items() if k not in HIDDEN}) for p in found]


def merge(own: list[tuple[float, dict]], public: list[tuple[float, dict]], limit: int) -> list[tuple[float, dict]]:
    """One nearest-first list of the two answers; the agent's own public
    memories come back from both, once."""
    best: dict[str, tuple[float, dict]] = {}
    for score, payload in [*own, *public]:
        key = payload["memory_id"]
        if key not in best or score > best[key][0]:
            best[key] = (score, payload)
    return sorted(best.values(), key=lambda sp: (-sp[0], sp[1]["memory_id"]))[:limit]


def _add_public_in(shard: qe.EdgeShard) -> None:
    """A shard written before ``_public_in`` kept visibility in a keyword
    ``_visibility``: give its public points the new field, per simulation."""
    sims = shard.facet(qe.FacetRequest("sim_id", limit=1_000_000, exact=True)).hits
    for name, kind in INDEXES.items():
        shard.update(qe.UpdateOperation.create_field_index(name, kind))
    for hit in sims:
        shard.update(qe.UpdateOperation.set_payload_by_filter(
            qe.Filter(must=[_match("sim_id", hit.value), _match(LEGACY_VISIBILITY, "public")]), {PUBLIC_IN: hit.value}))
    shard.flush()
    log.info("vector shard: public memories of %d simulation(s) marked for per-simulation search", len(sims))


class EdgeQdrantStore:
    local = True  # in-process: the API process that serves retrieval also runs the sink

    def __init__(self, settings: Settings, *, dim: int | None = None, collection: str | None = None) -> None:
        self.settings = settings
        self.dim = dim or settings.llm.embed_dim
        ns = f"{settings.namespace}_" if settings.namespace else ""
        self.collection = collection or f"{ns}{settings.qdrant_collection}"
        self.root = Path(settings.qdrant_path or settings.state_dir / "qdrant-edge" / (settings.namespace or "live"))
        self.params = edge_index.IndexParams(dim=self.dim, m=settings.qdrant_hnsw_m,
                                             ef_construct=settings.qdrant_hnsw_ef_construct)
        self._search_params = qe.SearchParams(hnsw_ef=settings.qdrant_hnsw_ef)
        self._exact = qe.SearchParams(exact=True)
        self._shard: qe.EdgeShard | None = None
        self._live: Path | None = None
        # The shard object, shared by the API's request threads and the sink
        # thread; held for each call and for the swap to a new generation.
        self._lock = threading.Lock()
        # Writes, the copy a build starts from and the swap: one at a time.
        self._writes = threading.Lock()
        self._builder = None  # the child process indexing the next generation
        # Writes taken while it runs, upserts and deletes in order, each a
        # function making its operation again for the new generation.
        self._since: list[Callable[[], qe.UpdateOperation]] = []
        self._retry_at = 0.0
        self._left_unindexed = 0  # points the last build left outside the index
        self._closed = False
        self.builds = 0
        self.last_build: dict | None = None
        self.last_index_error: str | None = None

    # -- generations ---------------------------------------------------------
    @property
    def _pointer(self) -> Path:
        return self.root / f"{self.collection}.current"

    def _generation(self, n: int) -> Path:
        # Generation 0 is the plain collection folder (shards made before
        # generations existed open unchanged).
        return self.root / (self.collection if n == 0 else f"{self.collection}@{n}")

    def _live_folder(self) -> Path:
        if self._pointer.exists():
            return self.root / self._pointer.read_text().strip()
        return self._generation(0)

    def _sweep(self, live: Path) -> None:
        """Folders of other generations: an interrupted build's or a swapped-out one's."""
        for folder in [self._generation(0), *self.root.glob(f"{self.collection}@*")]:
            if folder != live and folder.is_dir():
                shutil.rmtree(folder, ignore_errors=True)

    def ensure_collection(self) -> None:
        if self._shard is not None:
            return
        with self._writes:
            self._open()
            self._maybe_build()  # a shard opened with many points outside the index

    def _open(self) -> None:
        with self._lock:
            if self._shard is not None:
                return
            live = self._live_folder()
            self._sweep(live)
            config = edge_index.edge_config(self.params)
            if (live / "edge_config.json").exists():  # written by create
                shard = qe.EdgeShard.load(str(live), config)
                if PUBLIC_IN not in shard.info().payload_schema:
                    _add_public_in(shard)
            else:
                live.mkdir(parents=True, exist_ok=True)
                shard = qe.EdgeShard.create(str(live), config)
                for name, kind in INDEXES.items():
                    shard.update(qe.UpdateOperation.create_field_index(name, kind))
            self._shard, self._live, self._closed = shard, live, False

    # -- the index, built beside the serving shard ---------------------------
    def _unindexed(self) -> int:
        with self._lock:
            info = self._shard.info()
        return info.points_count - info.indexed_vectors_count

    def _maybe_build(self) -> None:
        """Start a build when enough points are outside the index. Holds ``_writes``."""
        after = self.settings.qdrant_edge_index_after
        if not after or self._builder is not None or self._closed or time.monotonic() < self._retry_at:
            return
        # Qdrant leaves a segment below its indexing threshold as it is: a
        # build must find at least ``after`` more points than the last one left.
        if self._unindexed() < self._left_unindexed + after:
            return
        n = int(self._live.name.rsplit("@", 1)[1]) + 1 if "@" in self._live.name else 1
        target = self._generation(n)
        shutil.rmtree(target, ignore_errors=True)
        with self._lock:
            self._shard.flush()
        # Searches go on during the copy; only writes wait (their files must not move under it).
        shutil.copytree(self._live, target)
        self._since = []
        self._builder = edge_index.start(target, self.params)
        threading.Thread(target=self._await_build, args=(self._builder, target), name="edge-index",
                         daemon=True).start()

    def _await_build(self, proc, target: Path) -> None:
        try:
            summary, error = edge_index.finish(proc), None
        except Exception as exc:  # noqa: BLE001 - a failed build leaves the live shard serving
            summary, error = None, str(exc)
        with self._writes:
            self._builder = None
            since, self._since = self._since, []
            if self._closed or error is not None:
                shutil.rmtree(target, ignore_errors=True)
                if error is not None and not self._closed:
                    self.last_index_error = error
                    self._retry_at = time.monotonic() + RETRY_AFTER_S
                    VECTOR_INDEX_BUILDS.labels("failed").inc()
                    log.error("vector index build failed (the live shard keeps serving): %s", error)
                return
            try:
                self._swap(target, since)
            except Exception as exc:  # noqa: BLE001
                shutil.rmtree(target, ignore_errors=True)
                self.last_index_error = f"swap: {exc}"
                self._retry_at = time.monotonic() + RETRY_AFTER_S
                VECTOR_INDEX_BUILDS.labels("failed").inc()
                log.exception("vector index swap failed (the live shard keeps serving)")
                return
            self.builds += 1
            self._left_unindexed = summary["points"] - summary["indexed"]
            self.last_build, self.last_index_error = summary, None
            VECTOR_INDEX_BUILDS.labels("swapped").inc()
            VECTOR_INDEX_SECONDS.observe(summary["seconds"])
            self._maybe_build()  # writes taken during the build may already call for the next

    def _swap(self, target: Path, since: list[Callable[[], qe.UpdateOperation]]) -> None:
        """Open the indexed generation, replay the writes it missed, make it live. Holds ``_writes``."""
        fresh = qe.EdgeShard.load(str(target), edge_index.edge_config(self.params))
        # In the order taken: upserts by id and deletes by filter, so replaying
        # one twice changes nothing, and a delete is not undone by the copy
        # the build started from (which still held the deleted points).
        for operation in since:
            fresh.update(operation())
        fresh.flush()
        tmp = self._pointer.with_suffix(".tmp")
        tmp.write_text(target.name)
        os.replace(tmp, self._pointer)  # the new generation is live from here, even after a crash
        with self._lock:
            old, self._shard = self._shard, fresh
            old_folder, self._live = self._live, target
        old.close()
        shutil.rmtree(old_folder, ignore_errors=True)

    def index_status(self) -> dict:
        """Points, how many are in the HNSW index, and the builder's state."""
        self.ensure_collection()
        with self._lock:
            info = self._shard.info()
        return {"points": info.points_count, "indexed": info.indexed_vectors_count, "segments": info.segments_count,
                "building": self._builder is not None, "builds": self.builds,
                "last_build": self.last_build, "last_error": self.last_index_error,
                "generation": self._live.name if self._live else None}

    def wait_indexed(self, timeout: float = 3_600.0) -> dict:
        """Block until no build runs and none is due (for benchmarks and tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._writes:
                self._maybe_build()
                if self._builder is None:
                    return self.index_status()
            time.sleep(0.2)
        raise TimeoutError(f"vector index still building after {timeout:.0f} s")

    # -- the contract ---------------------------------------------------------
    def upsert(self, memories: list[dict]) -> int:
        points = _points(memories)
        if points:
            self.ensure_collection()
            with self._writes:
                with self._lock:
                    self._shard.update(qe.UpdateOperation.upsert_points(points))
                if self._builder is not None:
                    self._since.append(lambda points=points: qe.UpdateOperation.upsert_points(points))
                self._maybe_build()
        return len(points)

    def delete_sim(self, sim_id: str) -> int:
        """Every point of the simulation removed, from the live generation
        and, when a build runs, from the one it will swap in."""
        self.ensure_collection()
        with self._writes:
            with self._lock:
                n = self._shard.count(qe.CountRequest(exact=True, filter=qe.Filter(must=[_match("sim_id", sim_id)])))
                self._shard.update(qe.UpdateOperation.delete_points_by_filter(qe.Filter(must=[_match("sim_id", sim_id)])))
                self._shard.flush()
            if self._builder is not None:
                self._since.append(lambda: qe.UpdateOperation.delete_points_by_filter(
                    qe.Filter(must=[_match("sim_id", sim_id)])))
        return n

    def _queries(self, r: dict) -> list[qe.QueryRequest]:
        """The agent's own memories (exact: its filter picks few points, read
        through the payload index), then, when asked, the sim's public ones
        (through their graph)."""
        vector = qe.Query.Nearest(list(r["vector"]))
        out = [qe.QueryRequest(limit=r["limit"], query=vector, with_payload=True,
                               filter=own_filter(r["sim_id"], r["agent_id"]), params=self._exact)]
        if r["include_public"]:
            out.append(qe.QueryRequest(limit=r["limit"], query=vector, with_payload=True,
                                       filter=public_filter(r["sim_id"]), params=self._search_params))
        return out

    def search(self, *, sim_id: str, agent_id: str, vector: list[float], limit: int,
               include_public: bool) -> list[tuple[float, dict]]:
        self.ensure_collection()
        queries = self._queries(dict(sim_id=sim_id, agent_id=agent_id, vector=vector, limit=limit,
                                     include_public=include_public))
        # Query by query: query_batch spreads a batch over threads, which on
        # two cores put 6-11 ms on this call's p99 at 100k (against 3 ms).
        with self._lock:
            found = [_strip(self._shard.query(q)) for q in queries]
        return merge(found[0], found[1] if len(found) > 1 else [], limit)

    def search_many(self, requests: list[dict]) -> list[list[tuple[float, dict]]]:
        if not requests:
            return []
        self.ensure_collection()
        queries = [self._queries(r) for r in requests]
        with self._lock:
            found = self._shard.query_batch(qe.QueryBatchRequest([q for qs in queries for q in qs]))
        out, k = [], 0
        for r, qs in zip(requests, queries):
            parts = [_strip(found[k + i]) for i in range(len(qs))]
            k += len(qs)
            out.append(merge(parts[0], parts[1] if len(parts) > 1 else [], r["limit"]))
        return out

    def count(self, sim_id: str | None = None) -> int:
        self.ensure_collection()
        flt = qe.Filter(must=[_match("sim_id", sim_id)]) if sim_id is not None else None
        with self._lock:
            return self._shard.count(qe.CountRequest(exact=True, filter=flt))

    def close(self) -> None:
        with self._writes:
            self._closed = True
            if self._builder is not None:
                self._builder.kill()  # its thread removes the half-built generation
            with self._lock:
                if self._shard is None:
                    return
                self._shard.flush()
                self._shard.close()
                self._shard = None
