"""One contract, run against every vector store Murmur can open in-process:
qdrant-client's local mode and Qdrant Edge (Qdrant's own engine). The API's
retrieval and the Qdrant sink rely on exactly this, whichever is configured.

A Qdrant server is the third backend (``MURMUR_QDRANT_URL``): the same suite
runs against a real one in tests/integration/test_vector_store_server.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from sinks.qdrant_edge_store import EdgeQdrantStore
from sinks.qdrant_store import QdrantStore, payload_of
from streams.settings import Settings

DIM = 8


def memory(i: int, agent: str, *, public: bool, sim: str = "s1", vector=None) -> dict:
    rng = np.random.default_rng(i)
    v = np.asarray(vector if vector is not None else rng.normal(size=DIM), dtype="<f4")
    return {"memory_id": f"{sim}-{agent}-{i}", "sim_id": sim, "agent_id": agent, "kind": "post" if public else "observation",
            "public": public, "importance": i % 10, "round": i // 4, "ts": 1_000 + i, "content": f"text {i}",
            "embedding_f32": (v / np.linalg.norm(v)).astype("<f4").tobytes()}


WORLD = ([memory(i, "alice", public=i % 2 == 0) for i in range(6)]
         + [memory(10 + i, "bob", public=i % 2 == 0) for i in range(6)]
         + [memory(20 + i, "alice", public=True, sim="s2") for i in range(3)])


class VectorStoreContract:
    """Subclasses say how to open the store over a folder."""

    def open(self, path) -> object:
        raise NotImplementedError

    @pytest.fixture
    def store(self, tmp_path):
        s = self.open(tmp_path)
        s.upsert(WORLD)
        yield s
        s.close()

    def test_upsert_is_idempotent(self, store):
        assert store.count() == len(WORLD)
        assert store.upsert(WORLD) == len(WORLD)  # a redelivered batch rewrites the same points
        assert store.count() == len(WORLD)
        assert (store.count("s1"), store.count("s2"), store.count("nowhere")) == (12, 3, 0)

    def test_a_memory_without_an_embedding_is_not_stored(self, store):
        bare = {**memory(99, "carol", public=True), "embedding_f32": None, "embedding": []}
        assert store.upsert([bare]) == 0
        assert store.count() == len(WORLD)

    def test_an_agent_sees_its_own_memories_and_only_public_ones_of_others(self, store):
        q = list(np.ones(DIM) / np.sqrt(DIM))
        own = store.search(sim_id="s1", agent_id="alice", vector=q, limit=50, include_public=False)
        assert {p["memory_id"] for _, p in own} == {m["memory_id"] for m in WORLD[:6]}
        seen = store.search(sim_id="s1", agent_id="alice", vector=q, limit=50, include_public=True)
        want = {m["memory_id"] for m in WORLD if m["sim_id"] == "s1" and (m["agent_id"] == "alice" or m["public"])}
        assert {p["memory_id"] for _, p in seen} == want
        assert not [p for _, p in seen if p["agent_id"] == "bob" and not p["public"]]  # never bob's private ones

    def test_nearest_first_with_cosine_scores_and_the_payload_as_written(self, store):
        target = WORLD[3]
        q = np.frombuffer(target["embedding_f32"], dtype="<f4").tolist()
        found = store.search(sim_id="s1", agent_id="alice", vector=q, limit=3, include_public=False)
        assert len(found) == 3
        scores = [s for s, _ in found]
        assert scores == sorted(scores, reverse=True)
        assert found[0][0] == pytest.approx(1.0, abs=1e-4)
        assert found[0][1] == payload_of(target)
        ref = np.frombuffer(target["embedding_f32"], dtype="<f4")
        for score, payload in found:
            m = next(x for x in WORLD if x["memory_id"] == payload["memory_id"])
            assert score == pytest.approx(float(ref @ np.frombuffer(m["embedding_f32"], dtype="<f4")), abs=1e-4)

    def test_many_searches_in_one_call_answer_as_each_alone(self, store):
        asks = [dict(sim_id=sim, agent_id=agent, vector=np.frombuffer(m["embedding_f32"], dtype="<f4").tolist(),
                     limit=limit, include_public=public)
                for sim, agent, m, limit, public in [("s1", "alice", WORLD[1], 4, False), ("s1", "bob", WORLD[1], 50, True),
                                                     ("s2", "alice", WORLD[12], 2, True), ("s1", "nobody", WORLD[0], 5, False)]]
        many = store.search_many(asks)
        alone = [store.search(**a) for a in asks]
        assert [[p["memory_id"] for _, p in r] for r in many] == [[p["memory_id"] for _, p in r] for r in alone]
        assert [[round(s, 4) for s, _ in r] for r in many] == [[round(s, 4) for s, _ in r] for r in alone]
        assert many[3] == [] and not [p for _, p in many[1] if p["agent_id"] == "alice" and not p["public"]]
        assert store.search_many([]) == []

    def test_deleting_a_simulation_removes_its_points_only(self, store):
        assert store.delete_sim("s1") == 12
        assert (store.count("s1"), store.count("s2"), store.count()) == (0, 3, 3)
        q = list(np.ones(DIM) / np.sqrt(DIM))
        assert store.search(sim_id="s1", agent_id="alice", vector=q, limit=50, include_public=True) == []
        assert len(store.search(sim_id="s2", agent_id="alice", vector=q, limit=50, include_public=True)) == 3
        assert store.delete_sim("s1") == 0  # again: nothing more

    def test_what_was_written_survives_a_reopen(self, tmp_path):
        s = self.open(tmp_path)
        s.upsert(WORLD)
        q = list(np.ones(DIM) / np.sqrt(DIM))
        before = s.search(sim_id="s1", agent_id="bob", vector=q, limit=5, include_public=True)
        s.close()
        again = self.open(tmp_path)
        try:
            assert again.count() == len(WORLD)
            after = again.search(sim_id="s1", agent_id="bob", vector=q, limit=5, include_public=True)
            assert [p["memory_id"] for _, p in after] == [p["memory_id"] for _, p in before]
        finally:
            again.close()


def settings_for(path, engine: str) -> Settings:
    return Settings(qdrant_path=path / "vectors", qdrant_engine=engine, state_dir=path)


class TestLocalMode(VectorStoreContract):
    def open(self, path):
        return QdrantStore(settings_for(path, "local"), dim=DIM, collection="contract")


class TestQdrantEdge(VectorStoreContract):
    def open(self, path):
        return EdgeQdrantStore(settings_for(path, "edge"), dim=DIM, collection="contract")
