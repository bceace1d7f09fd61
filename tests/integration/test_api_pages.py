"""Every list the API serves pages by cursor (Cassandra's paging state in a
Link header), and no row is skipped or repeated, not even rows that share a
millisecond, which the old ``before=ts`` cursor skipped."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.integration.readmodel import walk
from sinks.cassandra_store import CassandraStore

pytestmark = pytest.mark.integration
TS = 1_800_000_000_000


def memory(sim: str, i: int, agent: str) -> dict:
    return {"memory_id": f"m{i:03d}", "sim_id": sim, "agent_id": agent, "kind": "post" if i % 3 else "observation",
            "public": i % 3 != 0, "importance": 1 + i % 9, "round": 0, "ts": TS + i // 4,  # 4 rows a millisecond
            "content": f"memory {i}", "embedding_f32": None, "embedding": [], "action": "CREATE_POST",
            "platform": "reddit", "importance_fallback": False, "scorer": "test", "embedder": "none",
            "source_topic": "test", "source_partition": 0, "source_offset": i}


@pytest.fixture(scope="module")
def api(live, tmp_path_factory):
    sim = f"pages-{uuid.uuid4().hex[:8]}"
    db = CassandraStore(live)
    db.apply_schema()
    session = db.connect()
    rows = [memory(sim, i, "a1" if i % 2 else "a2") for i in range(23)]
    reflections = [{"event_id": f"r{k}", "sim_id": sim, "agent_id": "a1", "ts": TS + k // 3, "round": 1,
                    "content": f"belief {k}", "source_ids": ["m001"], "importance": 5, "trigger": "threshold",
                    "importance_sum": 150, "backend": "test"} for k in range(7)]
    for stmt, params in db.memory_writes(rows) + db.reflection_writes(reflections):
        session.execute(stmt, params)
    app = create_app(live.model_copy(update={"qdrant_path": tmp_path_factory.mktemp("q-pages")}), run_qdrant_sink=False)
    with TestClient(app) as client:
        yield client, sim, rows
    db.close()


def test_the_timeline_pages_through_rows_sharing_a_millisecond(api):
    client, sim, rows = api
    got, pages = walk(client, f"/simulations/{sim}/timeline", limit=3)
    public = [r for r in rows if r["public"]]
    assert sorted(r["memory_id"] for r in got) == sorted(r["memory_id"] for r in public)
    assert len(got) == len({r["memory_id"] for r in got})  # none twice
    assert [r["ts"] for r in got] == sorted((r["ts"] for r in got), reverse=True)
    assert pages >= len(public) // 3


def test_an_agents_memories_reflections_and_conflicts_page_too(api):
    client, sim, rows = api
    got, _ = walk(client, f"/simulations/{sim}/agents/a1/memories", limit=4)
    assert sorted(r["memory_id"] for r in got) == sorted(r["memory_id"] for r in rows if r["agent_id"] == "a1")
    posts, _ = walk(client, f"/simulations/{sim}/agents/a1/memories", limit=4, kind="post")
    assert {r["memory_id"] for r in posts} == {r["memory_id"] for r in rows if r["agent_id"] == "a1" and r["kind"] == "post"}
    got, pages = walk(client, f"/simulations/{sim}/agents/a1/reflections", limit=2)
    assert sorted(r["reflection_id"] for r in got) == [f"r{k}" for k in range(7)] and pages == 4
    assert walk(client, f"/simulations/{sim}/conflicts", limit=2)[0] == []


def test_a_cursor_it_did_not_hand_out_is_a_clear_422(api):
    client, sim, _ = api
    resp = client.get(f"/simulations/{sim}/timeline", params={"limit": 3, "cursor": "bm90LWEtY3Vyc29y"})
    assert resp.status_code == 422 and resp.headers["content-type"].startswith("application/problem+json")
    assert "cursor" in resp.json()["detail"]
