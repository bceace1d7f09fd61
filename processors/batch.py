"""The batch path: the processors' pure decision functions run over one
simulation's events in a deterministic order, without Faust.

Replay for eval uses it: the same importance, reflection, contradiction and
verdict functions as the live agents, so a change in any of them changes the
score; and because the order is fixed (round, event time, kind, agent, id)
rather than arrival order, two runs over the same input are identical to the
byte.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from processors import contradiction as con
from processors import importance as imp
from processors import reflection as ref
from processors import stance, verdict
from processors.opinion import ALL_FEATURES
from streams.runtime import Incoming
from streams.settings import Settings
from streams.topics import OBSERVATIONS, POSTS

KIND_RANK = {"Persona": 0, "round_start": 1, "simulation_start": 1, "Post": 2, "Observation": 2, "round_end": 3,
             "simulation_end": 4}


@dataclass
class BatchRuntime:
    """What the processors' functions need from a runtime, without Kafka."""

    settings: Settings
    llm: object
    embedder_name: str = "deterministic-hash-v1"


@dataclass
class SimOutputs:
    memories: list[dict] = field(default_factory=list)
    reflections: list[dict] = field(default_factory=list)
    reflection_memories: list[dict] = field(default_factory=list)
    conflicts: list[dict] = field(default_factory=list)
    personas: dict[str, dict] = field(default_factory=dict)
    round_ends: dict[int, int] = field(default_factory=dict)  # round -> ts of its (latest) end
    question: str = ""  # the simulation's own, from its Simulation event


def order_key(type_name: str, record: dict) -> tuple:
    kind = record.get("kind", type_name) if type_name == "RoundMarker" else type_name
    return (record.get("round", 0), KIND_RANK.get(kind, 2), record["ts"], record.get("agent_id", ""), record["event_id"])


def ordered(events: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """Deterministic order; duplicates (same event id) collapse to one."""
    unique = {rec["event_id"]: (t, rec) for t, rec in events}
    return sorted(unique.values(), key=lambda tr: order_key(*tr))


async def derive(rt: BatchRuntime, events: list[tuple[str, dict]], *, chunk: int = 1000) -> SimOutputs:
    """importance -> reflection and contradiction, per agent in order."""
    out = SimOutputs()
    incs: list[Incoming] = []
    for i, (t, r) in enumerate(ordered(events)):
        if t == "Persona":
            out.personas[r["agent_id"]] = r
        elif t == "Simulation":
            out.question = r["question"]
        elif t == "RoundMarker" and r["kind"] == "round_end":
            out.round_ends[r["round"]] = max(out.round_ends.get(r["round"], 0), r["ts"])
        elif t in ("Post", "Observation"):
            topic = (POSTS if t == "Post" else OBSERVATIONS).name
            incs.append(Incoming(t, r, topic, 0, i, None))
    for start in range(0, len(incs), chunk):
        out.memories += await imp.score_batch(rt, incs[start:start + chunk])

    by_agent: dict[str, list[Incoming]] = defaultdict(list)
    for i, m in enumerate(out.memories):
        by_agent[m["agent_id"]].append(Incoming("ScoredMemory", m, "memory.scored", 0, i, None))
    reflector = ref.Reflector(rt, rt.settings)
    detector = con.Detector(rt, rt.settings)
    for agent in sorted(by_agent):
        items = by_agent[agent]
        _, reflections, memories = await reflector.agent_events(ref.empty_state(), items)
        out.reflections += reflections
        out.reflection_memories += memories
        # Reflections reach contradiction after the memories they came from.
        with_reflections = items + [Incoming("ScoredMemory", m, "memory.scored", 0, len(out.memories) + j, None)
                                    for j, m in enumerate(memories)]
        with_reflections.sort(key=lambda inc: (inc.record["ts"], inc.record["kind"] == "reflection", inc.offset))
        _, conflicts = await detector.agent_events(con.empty_state(), with_reflections)
        out.conflicts += conflicts
    return out


async def verdicts(rt, out: SimOutputs, *, sim_id: str, question: str,
                   features: frozenset[str] = frozenset(ALL_FEATURES), reader: stance.Reader | None = None) -> list[dict]:
    """One verdict per round end, by the live path's own functions: per
    author, ``stance.agent_events`` over its persona, posts, reflections and
    conflicts (in the order a drained live run sees them: per round, posts,
    then reflections, then conflicts); then ``verdict.sim_events`` over the
    contributions and the round ends."""
    per_agent: dict[str, list[Incoming]] = defaultdict(list)
    for agent_id, p in sorted(out.personas.items()):
        per_agent[agent_id].append(Incoming("Persona", p, "sim.personas", 0, 0, None))
    staged = [((m["round"], 0, m["ts"], m["memory_id"]), Incoming("ScoredMemory", m, "memory.scored", 0, 0, None))
              for m in out.memories if m["kind"] == "post"]
    staged += [((m["round"], 1, m["ts"], m["memory_id"]), Incoming("ScoredMemory", m, "memory.scored", 0, 0, None))
               for m in out.reflection_memories]
    staged += [((c["round"], 2, c["ts"], c["event_id"]), Incoming("Conflict", c, "memory.conflicts", 0, 0, None))
               for c in out.conflicts]
    for _, inc in sorted(staged, key=lambda s: s[0]):
        per_agent[inc.record["agent_id"]].append(inc)

    async def the_question(_sim: str) -> str:
        return question

    contributions: list[dict] = []
    for agent in sorted(per_agent):
        _, events = await stance.agent_events(rt, stance.empty_state(), per_agent[agent], the_question,
                                              features=features, reader=reader)
        contributions += events
    items = [Incoming("Stance", c, "sim.stances", 0, i, None) for i, c in enumerate(contributions)]
    items += [Incoming("RoundMarker", {"event_id": f"end-{r}", "sim_id": sim_id, "round": r, "ts": ts,
                                       "kind": "round_end"}, "sim.rounds", 0, r, None)
              for r, ts in sorted(out.round_ends.items())]
    if not items:
        return []
    applied: set[str] = set()

    def seen(event_id: str) -> bool:
        if event_id in applied:
            return True
        applied.add(event_id)
        return False

    state = verdict.empty_state()
    state["question"] = question
    _, emitted = verdict.sim_events(state, items, seen, rt.settings.verdict)
    last = {v["round"]: v for v in emitted}
    return [last[r] for r in sorted(last)]
