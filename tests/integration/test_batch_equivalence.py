"""Live runs are deterministic, and a replay is the live run: two fresh
workers fed the same burst, and the batch path (processors/batch.py over
eval/replay.read_sim, what eval replay runs) over the log, write the same
ScoredMemory, Reflection, Conflict and Verdict records, compared as the bytes
Kafka holds (Avro single-object encoding), and the same read model.

Why it holds: every event of one agent (persona, posts, observations) is on
one partition of the agent log in the order the simulation produced it, and
one pass per agent (processors/agent.py) runs importance, contradiction,
reflection and stance over it in that order; nothing depends on how events
are batched or interleaved with other agents'. The verdict's inputs are
keyed by simulation and arrive in any order; its sums do not depend on it
(rounded to 6 decimals as published).

The burst is published at once (no phases), while both workers run. The
case makes the corners count: reflections and conflicts exist, an author's
only post is retracted by a conflict (it stops counting as an author) and an
author with reflections but no post (its reflections count, it is not an
author); template reflections are counted here
(``MURMUR_VERDICT__REFLECTIONS=all``) so that such an author exists.
No timing is asserted here: speed figures come from bench/ (B5).
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from connectors import synthetic
from connectors.events import OutEvent
from connectors.publisher import Publisher
from eval.replay import read_sim
from deploy.pipeline import stop_process
from processors.batch import BatchRuntime, derive, verdicts
from streams.llm import DeterministicLlm
from streams.kafka import read_to_end
from streams.serde import default_serde
from streams.settings import VerdictSettings, get_settings
from sinks.cassandra_store import CassandraStore
from streams.topics import AGENT_LOG, CONFLICTS, REFLECTIONS, SCORED, VERDICTS, agent_key, topic_name
from tests.integration.conftest import start_worker
from tests.integration.readmodel import assert_same, snapshot, wait_drained

pytestmark = pytest.mark.integration
CASE = Path(__file__).resolve().parents[2] / "eval" / "cases" / "new_coke_1985"
SERDE = default_serde()


def raw_by_id(settings, spec, sim: str) -> dict[str, bytes]:
    """Event id -> the bytes Kafka holds (the last, for a re-emitted verdict;
    a redelivered memory is the same bytes), for one simulation."""
    out: dict[str, bytes] = {}
    for m in read_to_end(settings, topic_name(spec, settings.namespace)):
        _, r = SERDE.decode(m.value())
        if r["sim_id"] == sim:
            out[r["event_id"]] = m.value()
    return out


def encoded(spec, records: list[dict]) -> dict[str, bytes]:
    return {r["event_id"]: SERDE.encode(spec.value, r) for r in records}


ENV = {"MURMUR_VERDICT__REFLECTIONS": "all", "MURMUR_REFLECTION_EVERY_ROUNDS": "2"}


def equivalence_settings(settings):
    return settings.model_copy(update={"verdict": VerdictSettings(reflections="all"), "reflection_every_rounds": 2})


def corner_agents(sim: str, start_ms: int) -> list[OutEvent]:
    """x-once posts once and is then contradicted by what it likes; z-watch
    only likes posts, and reflects on them."""
    def event(type_name, agent, rnd, mid, content, action):
        rec = {"event_id": f"{sim}-{mid}", "sim_id": sim, "round": rnd, "ts": start_ms + rnd * 3_600_000 + 1000,
               "agent_id": agent, "agent_name": agent, "platform": "", "action": action, "content": content,
               "source": "test", "source_ref": "test"}
        rec.update({"post_id": None, "parent_id": None} if type_name == "Post" else {"target_id": None, "args_json": "{}"})
        return OutEvent(AGENT_LOG, agent_key(sim, agent), rec, "test", type=type_name)

    out = [event("Post", "x-once", 0, "x-post", "I love the new Coke formula, it tastes great and I support it.",
                 "CREATE_POST"),
           event("Observation", "x-once", 1, "x-obs",
                 'I liked a post by Ana: "The new Coke formula is terrible, I hate it and oppose it."', "LIKE_POST")]
    out += [event("Observation", "z-watch", r, f"z-{r}", 'I liked a post by Bo: "The new Coke formula is a disaster, '
                  f'I am furious and will never buy it! Round {r}"', "LIKE_POST") for r in range(6)]
    return out


def exercising(sim: str) -> synthetic.SyntheticRun:
    """A seed whose run has reflections and conflicts (found offline, by the
    batch path itself), so every output kind is compared."""
    settings = equivalence_settings(get_settings())
    for seed in range(1, 50):
        run = synthetic.generate(CASE, sim_id=sim, seed=seed, agents=30, rounds=6)
        run.events += corner_agents(sim, min(e.record["ts"] for e in run.events))
        out = asyncio.run(derive(BatchRuntime(settings, DeterministicLlm(settings)),
                                 [(e.type_name, e.record) for e in run.events]))
        if out.reflections and len(out.conflicts) >= 2:
            return run
    raise AssertionError("no seed in 1..49 gives reflections and conflicts")


def test_two_live_runs_and_a_replay_write_the_same_bytes(live):
    first, second = start_worker(live, **ENV), start_worker(live, **ENV)
    sim = f"eq-{uuid.uuid4().hex[:8]}"
    run = exercising(sim)
    outputs = (SCORED, REFLECTIONS, CONFLICTS, VERDICTS)
    try:
        Publisher(live).publish(run.events)  # one burst, while both run
        runs = []
        for w in (first, second):
            # Twice in a row: the agent pass's stances are the verdict's inputs.
            wait_drained(w.settings, w, "the processors to drain", timeout=180)
            wait_drained(w.settings, w, "the processors to drain (again)", timeout=120)
            runs.append({spec.name: raw_by_id(w.settings, spec, sim) for spec in outputs})
        models = []
        for w in (first, second):
            store = CassandraStore(w.settings)
            try:
                models.append(snapshot(store, sim))
            finally:
                store.close()
    finally:
        stop_process(live, first.name)
        stop_process(live, second.name)

    read = read_sim(live, sim)
    settings = equivalence_settings(first.settings)
    rt = BatchRuntime(settings, DeterministicLlm(settings))
    out = asyncio.run(derive(rt, read.events, positions=read.positions))
    batch_verdicts = asyncio.run(verdicts(rt, out, sim_id=sim, question=""))  # no Simulation event: no question
    replay = {SCORED.name: encoded(SCORED, out.memories + out.reflection_memories),
              REFLECTIONS.name: encoded(REFLECTIONS, out.reflections), CONFLICTS.name: encoded(CONFLICTS, out.conflicts),
              VERDICTS.name: encoded(VERDICTS, batch_verdicts)}

    assert out.reflections and len(out.conflicts) >= 2, "the case must exercise reflection and contradiction"
    assert any(c["old_memory_id"] == f"{sim}-x-post" for c in out.conflicts), "x-once's only post must be retracted"
    assert any(m["agent_id"] == "z-watch" for m in out.reflection_memories), "z-watch must reflect"
    assert batch_verdicts[-1]["reflection_count"] > 0 and batch_verdicts[-1]["post_count"] > 0
    assert [v["round"] for v in batch_verdicts] == list(range(6))
    for spec in outputs:
        a, b, r = runs[0][spec.name], runs[1][spec.name], replay[spec.name]
        assert a and set(a) == set(b) == set(r), spec.name
        differ = [k for k in a if not a[k] == b[k] == r[k]]
        assert not differ, f"{spec.name}: {len(differ)} of {len(a)} records differ, e.g. " + repr(
            [SERDE.decode(x[differ[0]])[1] for x in (a, b, r)])
    assert_same(models[1], models[0], "in the second live run")
    assert models[0]["reflections"] and models[0]["conflicts"] and len(models[0]["verdicts"]) == 6
