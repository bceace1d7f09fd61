"""Publish the bundled example through real Kafka, let the real worker score
and sink it into real Cassandra, query the API, publish again: nothing doubles."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from connectors.publish_cli import Options, run_publish
from connectors.tail import TailFilter, tail
from deploy.pipeline import EXAMPLE
from streams.kafka import BatchProducer, make_producer
from streams.topics import AGENT_LOG, topic_name
from tests.integration.conftest import wait_for
from tests.integration.readmodel import drained

pytestmark = pytest.mark.integration


def test_example_end_to_end_and_idempotent(live, worker, store, sim_id):
    counts = run_publish(live, [EXAMPLE], Options(sim=sim_id)).counts
    posts, observations = counts.published["Post"], counts.published["Observation"]
    assert counts.dead_lettered == 3 and posts > 50 and observations > 30

    def landed():
        return (store.count_memories(sim_id, kinds=("post", "observation")) == posts + observations
                and store.count_timeline(sim_id) == posts)

    wait_for(landed,
             timeout=180, what="the example in Cassandra", worker=worker)

    with TestClient(create_app(worker.settings)) as client:
        health = client.get("/health").json()
        assert health["status"] == "ok", health
        timeline = client.get(f"/simulations/{sim_id}/timeline", params={"limit": 1000}).json()
        assert len(timeline) == posts
        assert [r["ts"] for r in timeline] == sorted((r["ts"] for r in timeline), reverse=True)
        agents = [a["agent_id"] for a in client.get(f"/simulations/{sim_id}/agents").json()]
        assert len(agents) == 16
        total = 0
        for agent in agents:
            rows = client.get(f"/simulations/{sim_id}/agents/{agent}/memories", params={"limit": 1000}).json()
            assert all(r["agent_id"] == agent and 1 <= r["importance"] <= 10 for r in rows)
            total += sum(r["kind"] in ("post", "observation") for r in rows)
        assert total == posts + observations
        assert client.get(f"/simulations/{sim_id}/agents/nobody/memories").status_code == 404
        assert client.get(f"/simulations/{sim_id}/timeline", params={"limit": 0}).status_code == 422

    # Publish the same files again: same ids, so the same rows.
    again = run_publish(live, [EXAMPLE], Options(sim=sim_id)).counts
    assert again.published == counts.published
    wait_for(lambda: drained(worker.settings), timeout=120, what="the worker to drain", worker=worker)
    assert landed()
    assert counts.published["Persona"] == 16

    # The live verdict: one per round end, personas behind the weights.
    with TestClient(create_app(worker.settings)) as client:
        verdicts = client.get(f"/simulations/{sim_id}/verdicts").json()
        assert [v["round"] for v in verdicts] == list(range(10))
        assert all(-1 <= v["support_ratio"] <= 1 and v["post_count"] > 0 for v in verdicts)
        assert verdicts[-1]["post_count"] == max(v["post_count"] for v in verdicts)
        # what each verdict rests on: posts read with and without a signal, none unreadable (English)
        assert all(v["posts_read"] + v["posts_no_signal"] == v["post_count"] and v["posts_unreadable"] == 0
                   and v["coverage"] == 1.0 and v["backend"] == "lexicon-v2" and v["stance_reliability"] == 0.28
                   for v in verdicts)
        # the deterministic backend's template reflections are left out of the verdict, and counted
        assert verdicts[-1]["reflection_count"] == 0 and verdicts[-1]["reflections_excluded"] > 0
        assert client.get(f"/simulations/{sim_id}/verdict").json() == verdicts[-1]
        agents = client.get(f"/simulations/{sim_id}/agents").json()
        assert {a["agent_id"]: a["persona"]["archetype"] for a in agents}["twitter-4"] == "media"


def test_bad_lines_and_bad_bytes_become_dead_letters(live, worker, store, sim_id, capsys):
    counts = run_publish(live, [EXAMPLE], Options(sim=sim_id)).counts
    memories = counts.published["Post"] + counts.published["Observation"]
    err = capsys.readouterr().err
    assert re.search(r"twitter/actions\.jsonl:\d+: \[round\] expected int, got str 'five'", err)
    assert re.search(r"reddit/actions\.jsonl:\d+: \[agent_id\] missing required field", err)

    # Garbage straight onto the agent log: the processor dead-letters it and goes on.
    producer = BatchProducer(make_producer(live))
    garbage = f"not avro {sim_id}".encode()
    producer.send(topic_name(AGENT_LOG), f"{sim_id}/x".encode(), garbage)
    producer.flush_blocking()

    import io

    def dead_letters():
        out = io.StringIO()
        tail(live, ["dead-letter"], filt=TailFilter(), from_beginning=True, follow=False, max_events=None,
             fmt="json", out=out)
        return [json.loads(line) for line in out.getvalue().splitlines()]

    def found():
        rows = dead_letters()
        pub = [r for r in rows if r["sim_id"] == sim_id and r["stage"] == "publisher"]
        proc = [r for r in rows if r["stage"] == "agent" and garbage.hex() in _raw_hex(r)]
        return len(pub) == 3 and len(proc) == 1

    wait_for(found, timeout=120, what="dead letters", worker=worker)
    rows = [r for r in dead_letters() if r["sim_id"] == sim_id]
    fields = sorted(str(r["field"]) for r in rows)
    assert fields == ["None", "agent_id", "round"]
    assert all(r["source_ref"].split(":")[-1].isdigit() for r in rows)
    # and the worker kept going: the sim's memories all landed
    wait_for(lambda: store.count_memories(sim_id, kinds=("post", "observation")) == memories, timeout=120,
             what="memories", worker=worker)


def _raw_hex(row) -> str:
    import base64

    return base64.b64decode(row["raw"]).hex()


def test_cli_tail_json_filters_by_sim_and_type(live, sim_id):
    run_publish(live, [EXAMPLE], Options(sim=sim_id)).counts
    out = subprocess.run(
        [sys.executable, "-m", "streams.cli", "tail", "agent-log", "--sim", sim_id, "--type", "Post",
         "--from-beginning", "--max", "5", "--format", "json"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout.splitlines()
    events = [json.loads(line) for line in out]
    assert len(events) == 5
    assert all(e["type"] == "Post" and e["sim_id"] == sim_id and e["_topic"] == "sim.agent-log.v1" for e in events)


def test_cli_topics_create_is_idempotent(live):
    first = subprocess.run([sys.executable, "-m", "streams.cli", "topics", "create"], capture_output=True, text=True,
                           timeout=120, check=True).stdout
    assert "sim.agent-log.v1: exists" in first and "created" not in first


def test_cli_tail_unknown_topic_is_a_clear_error(live):
    res = subprocess.run([sys.executable, "-m", "streams.cli", "tail", "nope.v9"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 1 and "no such topic: nope.v9" in res.stderr
