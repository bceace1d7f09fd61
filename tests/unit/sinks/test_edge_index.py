"""The Qdrant Edge store's HNSW index, built by a child process beside the
serving shard and swapped in (sinks/qdrant_edge_store.py, sinks/edge_index.py).

Real child processes and real shards on disk; no Kafka needed."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import qdrant_edge as qe

from sinks import edge_index
from sinks.qdrant_edge_store import LEGACY_VISIBILITY, EdgeQdrantStore
from sinks.qdrant_store import payload_of
from streams.ids import point_uuid
from streams.metrics import VECTOR_INDEX_BUILDS
from streams.settings import Settings

DIM = 32
AGENTS = 20


def world(n: int, *, start: int = 0, sims=("s1", "s2")) -> list[dict]:
    rng = np.random.default_rng(start)
    x = rng.normal(size=(n, DIM)).astype("<f4")
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return [{"memory_id": f"m{start + i}", "sim_id": sims[i % len(sims)], "agent_id": f"a{(start + i) % AGENTS}",
             "kind": "post", "public": (start + i) % 3 == 0, "importance": 5, "round": 0, "ts": start + i,
             "content": f"memory {start + i}", "embedding_f32": x[i].tobytes()} for i in range(n)]


def exact(memories: list[dict], sim: str, agent: str, q: np.ndarray, k: int) -> list[str]:
    seen = [m for m in memories if m["sim_id"] == sim and (m["agent_id"] == agent or m["public"])]
    scores = [float(np.frombuffer(m["embedding_f32"], dtype="<f4") @ q) for m in seen]
    return [seen[i]["memory_id"] for i in np.argsort(scores)[::-1][:k]]


def open_store(path, after: int) -> EdgeQdrantStore:
    return EdgeQdrantStore(Settings(state_dir=path, qdrant_path=path / "vectors", qdrant_edge_index_after=after),
                           dim=DIM, collection="c")


def test_a_build_runs_in_a_child_and_its_generation_is_swapped_in_with_the_writes_it_missed(tmp_path):
    store = open_store(tmp_path, after=300)
    first = world(400)
    store.upsert(first)  # 400 unindexed >= 300: a build starts from a copy of these
    assert store._builder is not None
    late = world(150, start=400)
    store.upsert(late)  # taken while the child builds: replayed into the new generation
    status = store.wait_indexed(timeout=120)
    try:
        assert status["builds"] == 1 and status["last_error"] is None
        assert status["generation"] == "c@1" and status["points"] == 550
        assert status["indexed"] >= 400  # the copy's points; the late ones may stay outside
        assert status["last_build"]["points"] == 400
        assert not (tmp_path / "vectors" / "c").exists()  # the swapped-out generation is gone
        everything = first + late
        for agent in ("a1", "a7"):
            q = np.frombuffer(late[3]["embedding_f32"], dtype="<f4")
            found = store.search(sim_id="s1", agent_id=agent, vector=q.tolist(), limit=10, include_public=True)
            assert [p["memory_id"] for _, p in found] == exact(everything, "s1", agent, q, 10)
            assert all(p["agent_id"] == agent or p["public"] for _, p in found)
        assert store.count() == 550
    finally:
        store.close()
    again = open_store(tmp_path, after=300)  # the pointer names the live generation
    try:
        assert again.count() == 550 and again.index_status()["generation"] == "c@1"
    finally:
        again.close()


def test_a_simulation_deleted_during_a_build_stays_deleted_after_the_swap(tmp_path):
    store = open_store(tmp_path, after=300)
    store.upsert(world(400))  # the build copies these, s1's points among them
    assert store._builder is not None
    assert store.delete_sim("s1") == 200
    store.upsert(world(20, start=400, sims=("s2",)))  # a write after the delete, replayed after it
    status = store.wait_indexed(timeout=120)
    try:
        assert status["builds"] == 1 and status["generation"] == "c@1"
        assert store.count("s1") == 0 and store.count("s2") == 220 and store.count() == 220
    finally:
        store.close()
    again = open_store(tmp_path, after=300)
    try:
        assert again.count("s1") == 0 and again.count() == 220
    finally:
        again.close()


def test_no_build_below_the_threshold_or_when_switched_off(tmp_path):
    for after, n in ((1_000, 400), (0, 400)):
        store = open_store(tmp_path / str(after), after=after)
        try:
            store.upsert(world(n))
            assert store._builder is None
            assert store.wait_indexed(timeout=5)["builds"] == 0
        finally:
            store.close()


def test_a_failed_build_leaves_the_live_shard_serving_and_says_why(tmp_path, monkeypatch):
    def broken(folder, params):
        import subprocess

        return subprocess.Popen([sys.executable, "-c", "import sys; print('no space left'); sys.exit(3)"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    monkeypatch.setattr(edge_index, "start", broken)
    failed = VECTOR_INDEX_BUILDS.labels("failed")._value.get()
    store = open_store(tmp_path, after=100)
    try:
        store.upsert(world(200))
        status = store.wait_indexed(timeout=30)  # the retry waits a minute: no second build here
        assert status["builds"] == 0 and status["generation"] == "c"
        assert "exited 3" in status["last_error"] and "no space left" in status["last_error"]
        assert VECTOR_INDEX_BUILDS.labels("failed")._value.get() == failed + 1
        assert not (tmp_path / "vectors" / "c@1").exists()
        assert store.count() == 200
    finally:
        store.close()


def test_an_interrupted_build_leaves_a_folder_that_the_next_open_removes(tmp_path):
    store = open_store(tmp_path, after=0)
    store.upsert(world(50))
    store.close()
    stray = tmp_path / "vectors" / "c@4"
    stray.mkdir()
    (stray / "half-written").write_text("x")
    again = open_store(tmp_path, after=0)
    try:
        assert again.count() == 50
        assert not stray.exists()
    finally:
        again.close()


def test_closing_during_a_build_stops_the_child(tmp_path):
    store = open_store(tmp_path, after=100)
    store.upsert(world(300))
    proc = store._builder
    assert proc is not None
    store.close()
    assert proc.wait(timeout=30) is not None
    again = open_store(tmp_path, after=0)
    try:
        assert again.count() == 300 and again.index_status()["generation"] == "c"
    finally:
        again.close()


def test_a_shard_written_before_public_in_is_migrated_on_open(tmp_path):
    """Shards of the previous layout kept visibility in a ``_visibility`` keyword."""
    memories = world(60)
    folder = tmp_path / "vectors" / "c"
    folder.mkdir(parents=True)
    shard = qe.EdgeShard.create(str(folder), qe.EdgeConfig(vectors=qe.EdgeVectorParams(size=DIM, distance=qe.Distance.Cosine)))
    for name in ("sim_id", "agent_id", LEGACY_VISIBILITY):
        shard.update(qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Keyword))
    shard.update(qe.UpdateOperation.upsert_points([
        qe.Point(str(point_uuid(m["memory_id"])), np.frombuffer(m["embedding_f32"], dtype="<f4").tolist(),
                 {**payload_of(m), LEGACY_VISIBILITY: "public" if m["public"] else "private"}) for m in memories]))
    shard.flush()
    shard.close()
    store = open_store(tmp_path, after=0)
    try:
        q = np.frombuffer(memories[0]["embedding_f32"], dtype="<f4")
        found = store.search(sim_id="s2", agent_id="a3", vector=q.tolist(), limit=60, include_public=True)
        assert sorted(p["memory_id"] for _, p in found) == sorted(
            m["memory_id"] for m in memories if m["sim_id"] == "s2" and (m["agent_id"] == "a3" or m["public"]))
        assert all(LEGACY_VISIBILITY not in p for _, p in found)
    finally:
        store.close()


@pytest.mark.parametrize("include_public", [True, False])
def test_the_indexed_graph_search_matches_exact_search_on_a_clustered_world(tmp_path, include_public):
    """8,000 public points of 384 dims are past Qdrant's full-scan threshold
    (10,000 KB, about 6,500 of them): the public search walks the graph.
    Recall@10 against exact search stays high and other agents' private
    memories never appear."""
    dim, n = 384, 16_000
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(60, dim))
    x = (centres[rng.integers(60, size=n)] + rng.normal(size=(n, dim)) * 0.6).astype("<f4")
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    memories = [{"memory_id": f"m{i}", "sim_id": "s", "agent_id": f"a{i % 30}", "kind": "post", "public": i % 2 == 0,
                 "importance": 5, "round": 0, "ts": i, "content": "", "embedding_f32": x[i].tobytes()} for i in range(n)]
    store = EdgeQdrantStore(Settings(state_dir=tmp_path, qdrant_path=tmp_path / "v", qdrant_edge_index_after=1_000),
                            dim=dim, collection="c")
    try:
        for i in range(0, n, 1_000):
            store.upsert(memories[i:i + 1_000])
        status = store.wait_indexed(timeout=300)
        assert status["points"] * dim * 4 / 2 > edge_index.FULL_SCAN_KB * 1024
        assert status["indexed"] == n and status["builds"] >= 1
        hits = 0
        for k in range(40):
            agent = f"a{k % 30}"
            q = x[k * 97] + rng.normal(size=dim).astype("<f4") * 0.05
            q /= np.linalg.norm(q)
            found = store.search(sim_id="s", agent_id=agent, vector=q.tolist(), limit=50, include_public=include_public)
            assert all(p["agent_id"] == agent or (include_public and p["public"]) for _, p in found)
            allowed = [m for m in memories if m["agent_id"] == agent or (include_public and m["public"])]
            scores = np.stack([np.frombuffer(m["embedding_f32"], dtype="<f4") for m in allowed]) @ q
            want = {allowed[i]["memory_id"] for i in np.argsort(-scores)[:10]}
            hits += len(want & {p["memory_id"] for _, p in found[:10]})
        assert hits / 400 >= 0.95
    finally:
        store.close()
