"""Agent memory through the real Kafka and Cassandra, with the LLM served by
the local vLLM-like server over HTTP (the `vllm` backend, not the
deterministic one): conflicts, reflections, retrieval and isolation.

Runs in a namespace of its own (derived topics, consumer group, keyspace,
Qdrant collection), so it is independent of the other tests' worker."""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from streams.errors import MurmurError
from connectors.publish_cli import run_publish
from deploy.pipeline import stop_process
from streams.llm.devserver import DevServer, DevServerConfig
from sinks.cassandra_store import CassandraStore
from tests.integration.conftest import start_worker, wait_for

pytestmark = pytest.mark.integration

OPINIONS = [
    "The mayor's budget scandal is a disaster! 300 jobs lost and I will fight it.",
    "I believe the council must resign now; the fraud cost our town 12 million!",
    "Historic protest downtown today: thousands furious about the budget scandal!",
    "I refuse to accept this corrupt budget, it is a shock to every family here!",
    "Urgent: the budget collapse means 40 schools lose funding. I will never forget it!",
]


@pytest.fixture(scope="module")
def vllm_pipeline(live):
    server = DevServer(DevServerConfig(latency_ms=5, capacity=64))
    server.start()
    # The outage test below is about what happens once the calls give up
    # (degraded memories, then rescore): no wait for the server to come
    # back, which is tested in test_llm_outage_wait.py.
    env = {"MURMUR_LLM__BACKEND": "vllm", "MURMUR_LLM__EMBED_BACKEND": "vllm", "MURMUR_LLM__OUTAGE_WAIT_S": "0"}
    for role in ("FAST", "BALANCED", "HEAVY", "EMBED"):
        env[f"MURMUR_LLM__{role}__URL"] = server.url
    w = start_worker(live, **env)
    llm = w.settings.llm.model_copy(update={
        "backend": "vllm", "embed_backend": "vllm",
        **{r: getattr(w.settings.llm, r).model_copy(update={"url": server.url})
           for r in ("fast", "balanced", "heavy", "embed")}})
    settings = w.settings.model_copy(update={"llm": llm})
    yield settings, server, w
    stop_process(live, w.name)
    server.stop()


def publish(tmp_path, settings, sim, events):
    path = tmp_path / f"{sim}.jsonl"
    path.write_text("\n".join(json.dumps({"sim_id": sim, **e}) for e in events) + "\n")
    counts = run_publish(settings, [path]).counts
    assert counts.dead_lettered == 0
    return counts


def post(agent, rnd, ts, text, **kw):
    return {"type": "Post", "agent_id": agent, "round": rnd, "ts": ts, "action": "CREATE_POST", "content": text, **kw}


def test_stance_flip_conflict_reflections_retrieval_and_isolation(live, vllm_pipeline, tmp_path):
    settings, server, worker = vllm_pipeline
    sim = f"mem-{uuid.uuid4().hex[:8]}"
    events = [
        post("flipper", 1, 1_000, "The Riverside bike lane plan is good for our street and I support it."),
        post("flipper", 2, 2_000, "The Riverside bike lane plan is great for our street, I support it fully."),
        post("flipper", 3, 3_000, "After the study, the Riverside bike lane plan looks bad for our street. I now oppose it."),
    ]
    events += [post("thinker", 1, 10_000 + i, OPINIONS[i % 5] + f" ({i})") for i in range(30)]
    events += [
        {"type": "Observation", "agent_id": "other", "round": 1, "ts": 50_000, "action": "SEARCH_POSTS",
         "content": "I secretly searched for the budget scandal and the mayor's fraud", "args_json": "{}"},
        post("other", 1, 50_001, "Public note: the budget scandal hearing is on Monday."),
    ]
    publish(tmp_path, live, sim, events)
    store = CassandraStore(settings)

    def conflicts_landed():
        return len(store.conflicts(sim, agent_id="flipper")) == 2

    wait_for(conflicts_landed, timeout=180, what="the flipper's conflicts", worker=worker)
    assert server.stats()["total"] > 0  # answers came over HTTP from the vLLM-like server

    def reflections_landed():
        return len(store.reflections(sim, "thinker", limit=100)) >= 3

    wait_for(reflections_landed, timeout=180, what="the thinker's reflections", worker=worker)
    vectors_expected = len(events)

    with TestClient(create_app(settings)) as client:
        # -- conflicts: flip -> both earlier statements superseded, not deleted
        conflicts = client.get(f"/simulations/{sim}/conflicts", params={"agent": "flipper"}).json()
        newest = conflicts[0]["new_memory_id"]
        assert {c["new_memory_id"] for c in conflicts} == {newest}
        assert all(c["reason"] and c["backend"].startswith("vllm:") for c in conflicts)
        memories = {m["memory_id"]: m for m in client.get(f"/simulations/{sim}/agents/flipper/memories").json()}
        assert len(memories) == 3
        for c in conflicts:
            old = memories[c["old_memory_id"]]
            assert old["valid_to"] == 3_000 and old["superseded_by"] == newest
        assert memories[newest]["valid_to"] is None
        current = client.get(f"/simulations/{sim}/agents/flipper/memories", params={"include_superseded": False}).json()
        assert [m["memory_id"] for m in current] == [newest]

        # -- reflections: 3-5 beliefs per reflection, each citing real memory ids
        thinker_ids = {m["memory_id"] for m in client.get(f"/simulations/{sim}/agents/thinker/memories",
                                                           params={"limit": 1000}).json() if m["kind"] == "post"}
        reflections = client.get(f"/simulations/{sim}/agents/thinker/reflections", params={"limit": 100}).json()
        groups = defaultdict(list)
        for r in reflections:
            groups[(r["ts"], r["trigger"])].append(r)
            assert r["source_ids"] and set(r["source_ids"]) <= thinker_ids
            assert r["trigger"] == "threshold" and r["importance_sum"] >= 150 and r["backend"].startswith("vllm:")
        assert groups and all(3 <= len(g) <= 5 for g in groups.values())

        # -- retrieval ranks as its weights say
        vectors = client.app.state.vectors
        wait_for(lambda: vectors.count(sim) >= vectors_expected, timeout=120, what="vectors in Qdrant")

        def retrieve(agent, **body):
            resp = client.post(f"/simulations/{sim}/agents/{agent}/retrieve", json={"query": "budget scandal", **body})
            assert resp.status_code == 200, resp.text
            return resp.json()

        def by(component, rows):
            return [r["scores"][component] for r in rows]

        only_rel = retrieve("thinker", top_k=10, weights={"relevance": 1, "recency": 0, "importance": 0})
        assert by("total", only_rel) == by("relevance", only_rel) == sorted(by("relevance", only_rel), reverse=True)
        only_imp = retrieve("thinker", top_k=10, weights={"relevance": 0, "recency": 0, "importance": 1})
        assert by("importance", only_imp) == sorted(by("importance", only_imp), reverse=True)
        only_rec = retrieve("thinker", top_k=10, weights={"relevance": 0, "recency": 1, "importance": 0},
                            include_public=False)
        assert [r["ts"] for r in only_rec] == sorted((r["ts"] for r in only_rec), reverse=True)
        assert only_rec[0]["scores"]["recency"] == 1.0  # the newest memory is the reference instant
        mixed = retrieve("thinker", top_k=5)
        for r in mixed:
            s = r["scores"]
            assert abs(s["total"] - (s["relevance"] + s["recency"] + s["importance"]) / 3) < 1e-5

        # -- isolation: another agent's private memory is never returned
        seen = retrieve("thinker", top_k=100, include_public=True)
        assert any(r["agent_id"] == "other" and r["public"] for r in seen)  # public posts are fair game
        assert not any(r["agent_id"] != "thinker" and not r["public"] for r in seen)
        private = retrieve("thinker", top_k=100, include_public=False)
        assert {r["agent_id"] for r in private} == {"thinker"}
        own = retrieve("other", top_k=100, include_public=False)
        assert any(not r["public"] for r in own)  # the owner does see it

        # -- bad requests are clear 4xx
        assert client.post(f"/simulations/{sim}/agents/thinker/retrieve", json={"query": "x", "top_k": 10_000}).status_code == 422
        assert client.post(f"/simulations/{sim}/agents/thinker/retrieve", json={"query": ""}).status_code == 422
        zero = client.post(f"/simulations/{sim}/agents/thinker/retrieve",
                           json={"query": "x", "weights": {"relevance": 0, "recency": 0, "importance": 0}})
        assert zero.status_code == 422 and "weight" in zero.text
        assert client.post(f"/simulations/{sim}/agents/nobody/retrieve", json={"query": "x"}).status_code == 404

        # -- context: the flipper's changed beliefs, the thinker's beliefs and memories, in budget
        flip = client.get(f"/simulations/{sim}/agents/flipper/context", params={"query": "bike lane"}).json()
        assert {c["conflict_id"] for c in flip["superseded"]} == {c["conflict_id"] for c in conflicts}
        assert "You once held" in flip["text"] and "bike lane plan looks bad" in flip["text"]
        think = client.get(f"/simulations/{sim}/agents/thinker/context",
                           params={"query": "budget scandal", "budget": 300, "top_k": 100}).json()
        assert think["reflections"] and think["memories"] and 0 < think["used_tokens"] <= 300
        assert len(think["text"]) <= 4 * 300 and think["left_out"]["memories"] > 0  # 100 memories do not fit
        assert set(think["rests_on"]) >= {m["memory_id"] for m in think["memories"]} | {
            r["reflection_id"] for r in think["reflections"]}
        # isolation through the context: only the agent's own private memories
        assert not any(m["agent_id"] != "thinker" and not m["public"] for m in think["memories"])
        assert "secretly searched" not in think["text"]
        assert client.get(f"/simulations/{sim}/agents/nobody/context", params={"query": "x"}).status_code == 404
        assert client.get(f"/simulations/{sim}/agents/thinker/context", params={"query": "x", "budget": 1}).status_code == 422

        # -- the batch form: one request for the agents of a round, same blocks
        batch = client.post(f"/simulations/{sim}/context", json={
            "budget": 300, "top_k": 100, "agents": [{"agent_id": "thinker", "query": "budget scandal"},
                                                    {"agent_id": "nobody", "query": "x"},
                                                    {"agent_id": "other", "query": "budget scandal"}]}).json()
        assert batch["missing"] == ["nobody"] and [c["agent_id"] for c in batch["contexts"]] == ["thinker", "other"]
        assert batch["contexts"][0]["text"] == think["text"]
        assert not any(m["agent_id"] != "other" and not m["public"] for m in batch["contexts"][1]["memories"])
        own = client.post(f"/simulations/{sim}/context", json={
            "include_public": False, "agents": [{"agent_id": "other", "query": "budget scandal"}]}).json()
        assert "secretly searched" in own["contexts"][0]["text"]  # its own private memory, to itself
        assert client.post(f"/simulations/{sim}/context", json={"agents": []}).status_code == 422

        # -- the Python client says the same (over the test client's transport)
        from api.client import MurmurClient, ReadModelError

        murmur = MurmurClient("http://testserver", http=client)
        assert murmur.context(sim, "thinker", "budget scandal", budget=300, top_k=100)["text"] == think["text"]
        assert murmur.contexts(sim, [("thinker", "budget scandal")], budget=300, top_k=100)["contexts"][0][
            "text"] == think["text"]
        with pytest.raises(ReadModelError) as missing:
            murmur.context(sim, "nobody", "x")
        assert missing.value.status == 404 and "nobody" in str(missing.value.detail)
    store.close()


def test_an_llm_driven_run_replays_from_its_journal_with_no_model_call(live, vllm_pipeline, tmp_path):
    from eval.replay import replay_sim
    from streams.kafka import read_to_end
    from streams.serde import default_serde
    from streams.topics import CONFLICTS, REFLECTIONS, SCORED, topic_name

    settings, server, worker = vllm_pipeline
    sim = f"journal-{uuid.uuid4().hex[:8]}"
    events = [post("flipper", r + 1, 1_000 * (r + 1), text) for r, text in enumerate([
        "The Riverside bike lane plan is good for our street and I support it.",
        "The Riverside bike lane plan is great for our street, I support it fully.",
        "After the study, the Riverside bike lane plan looks bad for our street. I now oppose it."])]
    events += [post("thinker", 1 + i // 10, 10_000 + i, OPINIONS[i % 5] + f" ({i})") for i in range(30)]
    publish(tmp_path, live, sim, events)
    serde = default_serde()

    def outputs(namespace: str) -> dict[str, bytes]:
        """Every derived event of the simulation, by id, as encoded (a redelivered copy is the same bytes)."""
        out = {}
        for spec in (SCORED, CONFLICTS, REFLECTIONS):
            for m in read_to_end(settings, topic_name(spec, namespace)):
                kind, r = serde.decode(m.value())
                if r["sim_id"] == sim:
                    out[r["event_id"]] = serde.encode(kind, r)
        return out

    def scored_posts() -> int:
        return sum(1 for m in read_to_end(settings, topic_name(SCORED, worker.settings.namespace))
                   if (r := serde.decode(m.value())[1])["sim_id"] == sim and r["kind"] == "post")

    wait_for(lambda: scored_posts() == len(events), timeout=180, what="every post scored", worker=worker)
    live_out = outputs(worker.settings.namespace)
    kinds = {serde.decode(b)[0] for b in live_out.values()}
    assert kinds == {"ScoredMemory", "Conflict", "Reflection"}  # the run used every kind of answer

    server.reset_stats()
    ns = f"jr{uuid.uuid4().hex[:6]}"
    summary = replay_sim(settings, sim, namespace=ns, journal="strict")
    assert server.stats()["total"] == 0  # not one request reached the model server
    assert summary["journal"]["misses"] == 0 and summary["journal"]["hits"] > len(events), json.dumps(summary["journal"])
    assert outputs(ns) == live_out  # byte-identical, event by event

    # Without the journal the same replay asks the model again.
    replay_sim(settings, sim, namespace=f"{ns}b", journal="off")
    assert server.stats()["total"] > 0


def test_memories_stored_during_an_llm_outage_are_scored_once_it_is_back(live, vllm_pipeline, tmp_path):
    from processors.rescore import run as rescore

    settings, server, worker = vllm_pipeline
    sim = f"outage-{uuid.uuid4().hex[:8]}"
    store = CassandraStore(settings)

    def memories() -> list[dict]:
        return store.memories(sim, "speaker", limit=100)

    first = [post("speaker", 1, 1_000 + i, OPINIONS[i] + " (before)") for i in range(3)]
    publish(tmp_path, live, sim, first)
    wait_for(lambda: len(memories()) == 3, timeout=120, what="the memories before the outage", worker=worker)

    served = set(server.config.models)
    server.config.fail_models = served  # every model answers 500: the LLM is down
    try:
        publish(tmp_path, live, f"{sim}", [post("speaker", 2, 2_000 + i, OPINIONS[i] + " (during)") for i in range(4)])
        wait_for(lambda: len(memories()) == 7, timeout=180, what="the memories during the outage", worker=worker)
    finally:
        server.config.fail_models = set()
    during = [m for m in memories() if m["content"].endswith("(during)")]
    assert len(during) == 4 and all(m["importance_fallback"] and m["importance"] == 5 and m["embedder"] == ""
                                    for m in during)  # degraded, and saying so

    summary = rescore(settings, sim)
    assert summary["degraded"] == 4 and summary["rescored"] == 4 and summary["still_degraded"] == 0

    def all_scored() -> bool:
        rows = memories()
        return len(rows) == 7 and not any(m["importance_fallback"] or not m["embedder"] for m in rows)

    wait_for(all_scored, timeout=120, what="the rescored memories in the read model", worker=worker)
    assert rescore(settings, sim)["degraded"] == 0  # and a second run finds nothing left to do
    with pytest.raises(MurmurError, match="no memories of simulation 'no-such-sim'"):
        rescore(settings, "no-such-sim")
    model_answers_again(tmp_path, live, store, worker)


def model_answers_again(tmp_path, live, store, worker, within: float = 90.0) -> None:
    """Leave the module's worker as the outage found it: its breaker to the
    server closed again (it stays open for a cooldown after the outage, and
    refuses every call meanwhile). A probe post a few seconds apart until
    one is scored by the model, not by the fallback."""
    deadline = time.monotonic() + within
    for n in range(1000):
        probe = f"probe-{uuid.uuid4().hex[:8]}"
        publish(tmp_path, live, probe, [post("speaker", 1, 1_000 + n, OPINIONS[0] + f" (probe {n})")])
        wait_for(lambda: len(store.memories(probe, "speaker", limit=10)) == 1, timeout=60,
                 what="the probe's memory", worker=worker)
        if not store.memories(probe, "speaker", limit=10)[0]["importance_fallback"]:
            return
        assert time.monotonic() < deadline, f"the worker's model calls still fall back {within:.0f} s after the outage"
        time.sleep(2.0)


def test_inputs_processed_again_are_answered_from_the_journal(live, vllm_pipeline, tmp_path):
    """A worker whose group had not committed some inputs (it died between
    asking the model and committing) processes them again from the state it
    had before them, asking the same questions: it answers them from the
    answers on the LlmCall topic and the embeddings on ScoredMemory
    (streams/resume_journal.py), and the model server sees no request.

    The worker that died is played by a second agent group in the same
    namespace: its offsets committed just before the simulation's events
    and its state empty (this simulation's agents had none before them
    either), as a group whose worker was killed before its first commit."""
    from deploy.pipeline import process_log, start_process
    from streams.app import group_id
    from streams.kafka import read_to_end, start_group_at_end
    from streams.serde import default_serde
    from streams.topics import LLM_CALLS, SCORED, topic_name
    from streams.topology import input_topics
    from tests.integration.conftest import Worker

    settings, server, worker = vllm_pipeline
    again = settings.model_copy(update={"app_id": f"resume{uuid.uuid4().hex[:6]}"})
    start_group_at_end(again, group_id(again, "agent"), input_topics(again, ["agent"]))
    sim = f"resume-{uuid.uuid4().hex[:8]}"
    events = [post(f"a{i % 3}", 1 + i // 6, 1_000 * (i + 1), OPINIONS[i % 5] + f" ({i})") for i in range(12)]
    publish(tmp_path, live, sim, events)
    serde = default_serde()

    def records(spec) -> list[dict]:
        return [r for m in read_to_end(settings, topic_name(spec, settings.namespace))
                if (r := serde.decode(m.value())[1])["sim_id"] == sim]

    wait_for(lambda: sum(r["kind"] == "post" for r in records(SCORED)) == len(events), timeout=180,
             what="every post scored by the first group", worker=worker)
    asked = [r for r in records(LLM_CALLS) if r.get("answer")]
    assert asked, "the first group journalled no answer"

    server.reset_stats()
    name = f"worker-resume-{again.app_id}"
    env = {**worker.env, "MURMUR_APP_ID": again.app_id}
    args = ["worker", "--processors", "agent", "--loglevel", "info"]
    second = Worker(again, start_process(live, name, args, env=env), name, args, env)
    try:
        wait_for(lambda: sum(r["kind"] == "post" for r in records(SCORED)) == 2 * len(events), timeout=180,
                 what="every post scored again by the second group", worker=second)
        assert server.stats()["total"] == 0, server.stats()  # not one request reached the model server
        log = process_log(live, name, 200)
        assert "resume journal:" in log and "every input committed" not in log, log
    finally:
        stop_process(live, name)
