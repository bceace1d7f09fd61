"""`murmur sim delete` against the real pipeline: two simulations published
through a worker (Kafka, Cassandra) and the API's in-process vector sink;
one deleted; nothing of it left in any view, the other untouched."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from connectors.publish_cli import Options, run_publish
from deploy.pipeline import EXAMPLE, stop_process
from sinks.cassandra_delete import sim_tables
from sinks.cassandra_store import CassandraStore
from sinks.qdrant_writer import STAGE as QDRANT_SINK
from sinks.vector_stores import open_vector_store
from streams.app import group_id
from streams.kafka import admin, group_lag
from sinks.sim_views import SimViews
from streams.sim_delete import PipelineRunning, _scan, changelog_pattern, delete_simulation
from streams.topics import PERSONAS, SCORED, SIMULATIONS, topic_name
from tests.integration.conftest import start_worker, wait_for
from tests.integration.readmodel import snapshot, stopped, wait_drained

pytestmark = pytest.mark.integration


def rows_of(store: CassandraStore, sim: str, agents: list[str]) -> dict[str, int]:
    """Rows of ``sim`` in every table that holds sims, found as the schema says."""
    s, ks, out = store.connect(), store.keyspace, {}
    for t in sim_tables():
        if t.reach == "sim":
            out[t.name] = s.execute(f"SELECT COUNT(*) FROM {ks}.{t.name} WHERE sim_id = %s", (sim,)).one()[0]
        elif t.reach == "agent":
            out[t.name] = sum(s.execute(f"SELECT COUNT(*) FROM {ks}.{t.name} WHERE sim_id = %s AND agent_id = %s",
                                        (sim, a)).one()[0] for a in agents)
        else:
            out[t.name] = len(list(s.execute(f"SELECT sim_id FROM {ks}.{t.name} WHERE sim_id = %s ALLOW FILTERING",
                                             (sim,))))
    return out


def vectors_drained(settings) -> bool:
    lag = group_lag(settings, group_id(settings, QDRANT_SINK), [topic_name(SCORED, settings.namespace)])
    return bool(lag) and all(p.lag == 0 for p in lag)


def test_delete_one_simulation_from_every_view(live, tmp_path):
    w = start_worker(live)
    settings = w.settings
    gone, kept = f"del-{uuid.uuid4().hex[:8]}", f"keep-{uuid.uuid4().hex[:8]}"
    # --question: the simulation's event too (the compacted simulations topic)
    counts = {sim: run_publish(live, [EXAMPLE], Options(sim=sim, question="Will the budget pass?")).counts
              for sim in (gone, kept)}
    store = CassandraStore(settings)
    try:
        def landed(sim):
            c = counts[sim]
            return (store.count_memories(sim, kinds=("post", "observation"))
                    == c.published["Post"] + c.published["Observation"] and len(store.verdicts(sim)) == 10)

        wait_for(lambda: landed(gone) and landed(kept), timeout=300, what="both simulations in Cassandra", worker=w)
        wait_drained(settings, w, "the worker to drain")
        with TestClient(create_app(settings)) as client:  # its sink thread fills the in-process vector store
            wait_for(lambda: vectors_drained(settings), timeout=180, what="the vector sink")
            assert client.get(f"/simulations/{gone}/agents").status_code == 200
            vectors_before = {sim: client.app.state.vectors.count(sim) for sim in (gone, kept)}
        assert all(vectors_before.values()), vectors_before

        agents = sorted(store.agents(gone))
        before = rows_of(store, gone, agents)
        assert before["memories_by_agent"] and before["personas_by_sim"] and before["verdicts_by_sim"]
        assert before["reflections_by_agent"] and before["timeline_by_sim"]
        kept_before = (snapshot(store, kept), rows_of(store, kept, sorted(store.agents(kept))))
        gone_before = snapshot(store, gone)

        # A running worker holds agent state in memory: the delete refuses.
        with pytest.raises(PipelineRunning, match=group_id(settings, "all")):
            delete_simulation(settings, gone, SimViews(settings))
        stopped(live, w)
        # Something the stopped worker has not read yet: the delete warns.
        late = tmp_path / "late.jsonl"
        late.write_text(json.dumps({"type": "Post", "sim_id": f"late-{uuid.uuid4().hex[:8]}", "agent_id": "a1",
                                    "round": 1, "ts": 1_000, "action": "CREATE_POST", "content": "late"}) + "\n")
        run_publish(live, [late])

        env = {**os.environ, "MURMUR_NAMESPACE": settings.namespace, "MURMUR_QDRANT_PATH": str(settings.qdrant_path)}
        out = subprocess.run([sys.executable, "-m", "streams.cli", "sim", "delete", gone, "--yes"], env=env,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        printed = {m[0]: int(m[1]) for m in re.findall(r"cassandra (\w+): (\d+) rows", out.stdout)}
        assert printed == before, out.stdout
        assert f"vector store: {vectors_before[gone]} points" in out.stdout
        assert "sim.agent-log.v1" in out.stdout and "brings it back" in out.stdout  # what stays, said
        assert f"warning: consumer group {group_id(settings, 'all')} has" in out.stdout, out.stdout

        # -- nothing of it in any view
        assert set(rows_of(store, gone, agents).values()) == {0}
        vectors = open_vector_store(settings)
        try:
            assert vectors.count(gone) == 0 and vectors.count(kept) == vectors_before[kept]
        finally:
            vectors.close()
        # -- its keys are tombstoned on the compacted topics and the changelogs
        changelogs = sorted(t for t in admin(settings).list_topics(timeout=10).topics
                            if changelog_pattern(settings).match(t))
        assert any(t.endswith("-agent-state-changelog") for t in changelogs), changelogs
        for topic in [topic_name(PERSONAS), topic_name(SIMULATIONS), *changelogs]:
            latest = _scan(settings, topic, gone)
            assert latest and not any(latest.values()), f"{topic}: {latest}"
        for topic in (topic_name(PERSONAS), topic_name(SIMULATIONS)):
            assert all(_scan(settings, topic, kept).values())
        # -- the other simulation untouched
        assert (snapshot(store, kept), rows_of(store, kept, sorted(store.agents(kept)))) == kept_before
        # -- the API knows it no more
        with TestClient(create_app(settings, run_qdrant_sink=False)) as client:
            assert client.get(f"/simulations/{gone}/agents").status_code == 404
            assert client.get(f"/simulations/{gone}/verdict").status_code == 404
            assert client.get(f"/simulations/{gone}/timeline").json() == []
            assert client.get(f"/simulations/{kept}/agents").status_code == 200

        # Again: nothing more to remove.
        again = delete_simulation(settings, gone, SimViews(settings))
        assert set(again.cassandra.values()) == {0} and again.vectors == 0 and set(again.tombstones.values()) == {0}

        # The worker rebuilds its tables from the changelogs without the
        # simulation: published again, it comes out as it did the first time
        # (agent state or verdict contributions left over would change it).
        w.restart(live)
        run_publish(live, [EXAMPLE], Options(sim=gone, question="Will the budget pass?"))
        wait_for(lambda: landed(gone), timeout=300, what="the deleted simulation published again", worker=w)
        wait_drained(settings, w, "the worker to drain")
        assert snapshot(store, gone) == gone_before
    finally:
        store.close()
        stop_process(live, w.name)
