"""/agents and /verdicts page by signed cursor like the other lists: every
row exactly once, in order, whatever the page size. Agents merge two
tables, so many agents are in both (they share the sort key) and some in
only one; verdicts are one row per round, oldest first."""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.integration.readmodel import walk
from sinks.cassandra_store import PERSONA_COLUMNS, VERDICT_COLUMNS, CassandraStore

pytestmark = pytest.mark.integration
TS = 1_800_000_000_000
SEEN = [f"agent-{i:03d}" for i in range(0, 41)]  # in agents_by_sim (from memories)
WITH_PERSONA = [f"agent-{i:03d}" for i in range(20, 61)]  # 21 in both tables, 20 persona only


def persona(sim: str, agent: str) -> dict:
    return {c: None for c in PERSONA_COLUMNS} | {"sim_id": sim, "agent_id": agent, "name": agent.title(),
                                                  "archetype": "skeptic", "openness": 0.5, "source": "test"}


def verdict(sim: str, r: int) -> dict:
    return {c: None for c in VERDICT_COLUMNS} | {
        "sim_id": sim, "round": r, "ts": TS + r, "question": "q", "support_ratio": r / 30, "direction": "up",
        "magnitude": 0.1, "confidence": 0.5, "post_count": r, "author_count": 1, "stance_positive": 0,
        "stance_negative": 0, "stance_neutral": 0, "flips": 0, "rationale": "r", "backend": "test"}


@pytest.fixture(scope="module")
def api(live, tmp_path_factory):
    sim = f"lists-{uuid.uuid4().hex[:8]}"
    db = CassandraStore(live)
    db.apply_schema()
    session = db.connect()
    agents = db._stmt("insert_agent_test", "INSERT INTO {ks}.agents_by_sim (sim_id, agent_id) VALUES (?, ?)")
    for agent in SEEN:
        session.execute(agents, (sim, agent))
    for stmt, params in (db.persona_writes(persona(sim, a) for a in WITH_PERSONA)
                         + db.verdict_writes(verdict(sim, r) for r in range(23))):
        session.execute(stmt, params)
    app = create_app(live.model_copy(update={"qdrant_path": tmp_path_factory.mktemp("q-lists")}), run_qdrant_sink=False)
    with TestClient(app) as client:
        yield client, sim
    db.close()


@pytest.mark.parametrize("limit", [1, 3, 7, 20, 61, 1000])
def test_agents_page_through_both_tables_each_agent_once(api, limit):
    client, sim = api
    got, pages = walk(client, f"/simulations/{sim}/agents", limit=limit)
    ids = [a["agent_id"] for a in got]
    assert ids == sorted(set(SEEN) | set(WITH_PERSONA))  # in order, none missing, none twice
    assert {a["agent_id"] for a in got if a["persona"]} == set(WITH_PERSONA)
    assert all(a["persona"]["name"] == a["agent_id"].title() for a in got if a["persona"])
    assert pages == -(-len(ids) // limit)  # no empty last page: a page reads one row more than it shows


@pytest.mark.parametrize("limit", [1, 4, 23, 100])
def test_verdicts_page_oldest_round_first_each_once(api, limit):
    client, sim = api
    got, _ = walk(client, f"/simulations/{sim}/verdicts", limit=limit)
    assert [v["round"] for v in got] == list(range(23))
    assert client.get(f"/simulations/{sim}/verdict").json()["round"] == 22


def test_an_unknown_simulation_is_still_404_and_a_foreign_cursor_422(api):
    client, sim = api
    assert client.get("/simulations/nope-nothing/agents").status_code == 404
    assert client.get("/simulations/nope-nothing/verdicts").status_code == 404
    link = client.get(f"/simulations/{sim}/agents", params={"limit": 2}).headers["link"]
    cursor = re.search(r"cursor=([^&>]+)", link).group(1)
    resp = client.get("/simulations/other-sim/agents", params={"limit": 2, "cursor": cursor})
    assert resp.status_code == 422 and "cursor" in resp.json()["detail"]
    resp = client.get(f"/simulations/{sim}/verdicts", params={"cursor": cursor})
    assert resp.status_code == 422
