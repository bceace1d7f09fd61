"""`murmur eval compare` on the real Kafka and Cassandra: a simulation
replayed twice with the same settings compares equal; replayed with
contradiction off (a similarity no pair reaches) it reports exactly what
that changes: the reference's conflicts only in the reference, the memories
they retracted still valid, and the verdicts of the rounds after them. A
live worker's run equals its replay, and each one's LLM calls are counted
from its LlmCall records: the same calls and tokens but for embeddings,
which go one call per batch."""

from __future__ import annotations

import json
import uuid

import pytest
from typer.testing import CliRunner

from connectors.publish_cli import Options, run_publish
from deploy.pipeline import EXAMPLE, stop_process
from eval.replay import replay_sim
from bench.common import delete_topics
from eval.run_reader import MissingRun, compare
from sinks.cassandra_store import keyspace_for
from streams.cli import app
from tests.integration.conftest import start_worker
from tests.integration.readmodel import wait_drained

pytestmark = pytest.mark.integration
QUESTION = "Will opinion on the Riverside bike lane plan be positive?"


@pytest.fixture
def namespaces(live):
    """Namespaces the test writes into, dropped after it (keyspace and
    topics): every keyspace costs the shared Cassandra heap and slows every
    client's schema read on connect, and nothing reads these again."""
    from sinks.cassandra_store import CassandraStore
    from streams.kafka import admin

    made: list[str] = []
    yield made
    store = CassandraStore(live)
    try:
        for ns in made:
            store.connect().execute(f"DROP KEYSPACE IF EXISTS {keyspace_for(live.model_copy(update={'namespace': ns}))}",
                                    timeout=120)
    finally:
        store.close()
    topics = [t for t in admin(live).list_topics(timeout=30).topics if any(t.startswith((f"{ns}.", f"{ns}-")) for ns in made)]
    delete_topics(live, topics)


def cli(*args: str):
    return CliRunner().invoke(app, ["eval", "compare", *args])


def test_identical_replays_compare_equal_and_a_changed_setting_shows_its_differences(live, sim_id, namespaces):
    run_publish(live, [EXAMPLE], Options(sim=sim_id))
    same_a, same_b, changed = namespaces[:] = [f"cmp{uuid.uuid4().hex[:6]}" for _ in range(3)]
    ref = replay_sim(live, sim_id, namespace=same_a, question=QUESTION)
    replay_sim(live, sim_id, namespace=same_b, question=QUESTION)
    # No pair of memories reaches a cosine of 1.01: contradiction never runs.
    off = replay_sim(live.model_copy(update={"contradiction_similarity": 1.01}), sim_id, namespace=changed,
                     question=QUESTION)
    assert ref["conflicts"] > 0 and off["conflicts"] == 0, "the case must have conflicts to lose"

    equal = compare(live, sim_id, same_b, same_a)
    assert equal["equal"] and all(equal["parts_equal"].values())
    assert equal["verdicts"]["a"] == equal["verdicts"]["b"] == 10 and equal["verdicts"]["rounds_differing"] == []
    assert equal["conflicts"]["a"] == equal["conflicts"]["b"] == ref["conflicts"]
    # Each replay records the calls it makes: the same setting, the same calls.
    assert equal["llm"]["a"] is not None and equal["llm"]["a"] == equal["llm"]["b"]
    assert equal["llm"]["a"]["calls"] > 0 and equal["llm"]["a"]["backends"] == ["deterministic"]

    diff = compare(live, sim_id, changed, same_a, examples=1000)  # every differing row listed
    assert not diff["equal"]
    assert diff["parts_equal"] == {"memories": False, "reflections": True, "conflicts": False, "verdicts": False}
    c = diff["conflicts"]
    assert (c["a"], c["b"], c["only_a"], c["only_b"]) == (ref["conflicts"], 0, ref["conflicts"], 0)
    # Exactly the memories the reference's conflicts retracted are still valid in the changed run.
    retracted = {e["old_memory_id"] for e in c["examples_only_a"]}
    m = diff["memories"]
    assert m["only_a"] == m["only_b"] == 0 and m["differing"] == len(retracted)
    for field in ("validity", "supersession"):
        assert {e["id"] for e in m["changed"][field]["examples"]} == retracted, field
        assert all(e["a"] is not None and e["b"] is None for e in m["changed"][field]["examples"]), field
    assert m["changed"]["importance"]["count"] == m["changed"]["kind"]["count"] == 0
    # A retracted post stops counting: the changed run counts more posts from the first conflict on.
    rounds = diff["verdicts"]["rounds"]
    assert diff["verdicts"]["rounds_differing"]
    assert all(r["b"]["post_count"] >= r["a"]["post_count"] for r in rounds)
    assert any(r["b"]["post_count"] > r["a"]["post_count"] for r in rounds)

    # The command: text, JSON, exit codes.
    res = cli("--sim", sim_id, "--namespace", same_b, "--against", same_a, "--fail-on-difference")
    assert res.exit_code == 0 and "result: equal" in res.output, res.output
    assert f"LLM calls of {same_a}: {equal['llm']['b']['calls']:,} calls (" in res.output
    res = cli("--sim", sim_id, "--namespace", changed, "--against", same_a, "--fail-on-difference", "--json")
    assert res.exit_code == 1, res.output
    assert json.loads(res.output)["conflicts"]["only_a"] == ref["conflicts"]
    res = cli("--sim", sim_id, "--namespace", f"nope{uuid.uuid4().hex[:6]}")
    assert res.exit_code == 2 and "no namespace 'nope" in res.output and "does not exist" in res.output
    with pytest.raises(MissingRun, match=f"no simulation '{sim_id}-none' in namespace '{changed}'"):
        compare(live, f"{sim_id}-none", changed, same_a)


def test_a_live_run_equals_its_replay_and_its_llm_calls_are_counted(live, sim_id, namespaces):
    w = start_worker(live)
    namespaces.append(w.settings.namespace)
    try:
        counts = run_publish(live, [EXAMPLE], Options(sim=sim_id, question=QUESTION)).counts
        wait_drained(w.settings, w, "the worker to drain", timeout=120)
        wait_drained(w.settings, w, "the worker to drain (again)", timeout=60)
    finally:
        stop_process(live, w.name)
    ns = f"cmp{uuid.uuid4().hex[:6]}"
    namespaces.append(ns)
    replay_sim(live, sim_id, namespace=ns)
    with pytest.raises(MissingRun, match="no simulation"):
        compare(live, sim_id, ns)  # the un-namespaced live run never saw it
    report = compare(w.settings, sim_id, ns)  # the worker's namespace is the live run here
    assert report["a"] == w.settings.namespace and report["b"] == ns
    assert report["equal"], {p: report[p] for p in ("memories", "reflections", "conflicts")}
    assert report["memories"]["a"] >= counts.published["Post"] + counts.published["Observation"]
    usage, replayed = report["llm"]["a"], report["llm"]["b"]
    assert usage is not None and replayed is not None
    # The same prompts, so the same calls and tokens, role by role; but for
    # embeddings, one call per batch, and the live run's batches are not the replay's.
    live_roles, replay_roles = ({k: v for k, v in u["by_role"].items() if k != "embed"} for u in (usage, replayed))
    assert live_roles and live_roles == replay_roles
    assert usage["backends"] == ["deterministic"] and usage["failed"] == 0
    assert usage["calls"] == sum(r["calls"] for r in usage["by_role"].values()) > 0
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert sum(r["prompt_tokens"] for r in usage["by_role"].values()) == usage["prompt_tokens"]
