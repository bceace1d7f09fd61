"""The batch path (processors/batch.py over connectors/replay.read_sim, what
eval replay runs) and the Faust path (a worker running every processor) give
the same outputs on the same input: ScoredMemory, Reflection, Conflict and
Verdict, matched by their deterministic ids and compared field by field.

Making the comparison honest:
* Order. Per-agent state (reflection, contradiction, stance) depends on the
  order of an agent's memories, and Kafka orders nothing across topics: an
  agent's observation (sim.observations) and post (sim.posts) of one round
  may reach importance in either order, and a reflection (produced later by
  the reflection processor) may land before or after the agent's next
  memory. The batch path fixes one order (round, kind, event time, agent,
  id). So the simulation is published in phases, each drained before the next
  (personas; then per round: start marker, observations, posts, end marker),
  which makes the live order the batch order. Without phases, outputs can
  differ (the known observation: live vs replay verdicts differed slightly).
* Provenance. ``source_topic/partition/offset`` say where an output's input
  was read; they differ by construction (the batch path numbers its inputs
  itself) and are left out of the comparison.
* Floats. Embeddings travel as Avro ``float`` (32-bit); the live processors
  downstream of importance see them rounded so, the batch path compares
  them after the same rounding.
* The verdict is one implementation (the batch path runs the stance and
  verdict processors' own functions), and the case makes the corners count:
  an author whose only post is retracted by a conflict (it stops counting as
  an author) and an author with reflections but no post (its reflections
  count, it is not an author); template reflections are counted here
  (``MURMUR_VERDICT__REFLECTIONS=all``) so that such an author exists.
No timing is asserted here: speed figures come from bench/ (B5).
"""

from __future__ import annotations

import asyncio
import struct
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
from streams.topics import CONFLICTS, OBSERVATIONS, POSTS, REFLECTIONS, SCORED, VERDICTS, agent_key, topic_name
from tests.integration.conftest import start_worker
from tests.integration.readmodel import wait_drained

pytestmark = pytest.mark.integration
CASE = Path(__file__).resolve().parents[2] / "eval" / "cases" / "new_coke_1985"
PROVENANCE = ("source_topic", "source_partition", "source_offset")


def f32(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


def comparable(record: dict) -> dict:
    out = {k: v for k, v in record.items() if k not in PROVENANCE}
    if "embedding" in out:
        out["embedding"] = [f32(v) for v in out["embedding"]]
    return out


def read_topic(settings, topic: str) -> list[dict]:
    serde = default_serde()
    return [serde.decode(m.value())[1] for m in read_to_end(settings, topic)]


def by_id(records: list[dict], sim: str) -> dict[str, dict]:
    """Last record per event id (a re-emitted verdict replaces its row), of
    one simulation (the source topics are shared, so a worker also sees what
    others publish meanwhile)."""
    return {r["event_id"]: comparable(r) for r in records if r["sim_id"] == sim}


ENV = {"MURMUR_VERDICT__REFLECTIONS": "all", "MURMUR_REFLECTION_EVERY_ROUNDS": "2"}


def equivalence_settings(settings):
    return settings.model_copy(update={"verdict": VerdictSettings(reflections="all"), "reflection_every_rounds": 2})


def corner_agents(sim: str, start_ms: int) -> list[OutEvent]:
    """x-once posts once and is then contradicted by what it likes; z-watch
    only likes posts, and reflects on them."""
    def event(spec, agent, rnd, mid, content, action):
        rec = {"event_id": f"{sim}-{mid}", "sim_id": sim, "round": rnd, "ts": start_ms + rnd * 3_600_000 + 1000,
               "agent_id": agent, "agent_name": agent, "platform": "", "action": action, "content": content,
               "source": "test", "source_ref": "test"}
        rec.update({"post_id": None, "parent_id": None} if spec is POSTS else {"target_id": None, "args_json": "{}"})
        return OutEvent(spec, agent_key(sim, agent), rec, "test")

    out = [event(POSTS, "x-once", 0, "x-post", "I love the new Coke formula, it tastes great and I support it.",
                 "CREATE_POST"),
           event(OBSERVATIONS, "x-once", 1, "x-obs",
                 'I liked a post by Ana: "The new Coke formula is terrible, I hate it and oppose it."', "LIKE_POST")]
    out += [event(OBSERVATIONS, "z-watch", r, f"z-{r}", 'I liked a post by Bo: "The new Coke formula is a disaster, '
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


def test_batch_path_equals_faust_path(live):
    w = start_worker(live, **ENV)
    sim = f"eq-{uuid.uuid4().hex[:8]}"
    run = exercising(sim)
    publisher = Publisher(live)

    def phase(events) -> None:
        if events:
            publisher.publish(events)
        # Twice in a row: one processor's outputs are the next one's inputs.
        wait_drained(w.settings, w, "the processors to drain", timeout=120)
        wait_drained(w.settings, w, "the processors to drain (again)", timeout=120)

    def kind(e) -> str:
        return e.record["kind"] if e.type_name == "RoundMarker" else e.type_name

    try:
        phase([e for e in run.events if e.type_name == "Persona"])
        for rnd in range(6):
            mine = [e for e in run.events if e.type_name != "Persona" and e.record["round"] == rnd]
            for k in ("round_start", "Observation", "Post", "round_end"):
                phase([e for e in mine if kind(e) == k])
        ns = w.settings
        live_memories = by_id(read_topic(ns, topic_name(SCORED, ns.namespace)), sim)
        live_reflections = by_id(read_topic(ns, topic_name(REFLECTIONS, ns.namespace)), sim)
        live_conflicts = by_id(read_topic(ns, topic_name(CONFLICTS, ns.namespace)), sim)
        live_verdicts = by_id(read_topic(ns, topic_name(VERDICTS, ns.namespace)), sim)
    finally:
        stop_process(live, w.name)

    events = read_sim(live, sim).events
    settings = equivalence_settings(w.settings)
    rt = BatchRuntime(settings, DeterministicLlm(settings))
    out = asyncio.run(derive(rt, events))
    batch_verdicts = asyncio.run(verdicts(rt, out, sim_id=sim, question=""))  # no Simulation event: no question

    assert out.reflections and out.conflicts, "the case must exercise reflection and contradiction"
    assert any(c["old_memory_id"] == f"{sim}-x-post" for c in out.conflicts), "x-once's only post must be retracted"
    assert any(m["agent_id"] == "z-watch" for m in out.reflection_memories), "z-watch must reflect"
    assert batch_verdicts[-1]["reflection_count"] > 0 and batch_verdicts[-1]["post_count"] > 0
    assert by_id(out.memories + out.reflection_memories, sim) == live_memories
    assert by_id(out.reflections, sim) == live_reflections
    assert by_id(out.conflicts, sim) == live_conflicts
    assert [v["round"] for v in batch_verdicts] == list(range(6))
    # Every round, not only the final one: a conflict retracts the
    # superseded post from the conflict's round on, in both paths.
    assert by_id(batch_verdicts, sim) == live_verdicts
