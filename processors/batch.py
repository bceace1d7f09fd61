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
from processors.opinion import ALL_FEATURES, LEXICON, Persona, VerdictBook, valence
from processors.runtime import Incoming
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
    question: str = ""


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


def verdicts(out: SimOutputs, *, sim_id: str, question: str, features: frozenset[str] = frozenset(ALL_FEATURES),
             stance_backend: str = LEXICON) -> list[dict]:
    """One verdict per round end, from the same inputs in the same order."""
    book = VerdictBook(sim_id, question, features=features, backend=stance_backend)
    for agent_id, p in sorted(out.personas.items()):
        book.add_persona(agent_id, Persona(p["credibility"], p["conviction"], p["initial_stance"]))
    superseded_at = {}
    for c in sorted(out.conflicts, key=lambda c: (c["round"], c["ts"], c["event_id"])):
        superseded_at.setdefault(c["old_memory_id"], c["round"])
    items = [("post", m) for m in out.memories if m["kind"] == "post"]
    items += [("reflection", m) for m in out.reflection_memories]
    items.sort(key=lambda km: (km[1]["round"], km[1]["ts"], km[0] == "reflection", km[1]["memory_id"]))
    rounds = sorted(out.round_ends) or sorted({m["round"] for _, m in items})[-1:]
    result = []
    pending = iter(items)
    nxt = next(pending, None)
    for rnd in rounds:
        while nxt is not None and nxt[1]["round"] <= rnd:
            kind, m = nxt
            v = valence(m["content"], question)
            if kind == "post":
                book.add_post(m["memory_id"], m["agent_id"], m["round"], v, m["importance"])
            else:
                book.add_reflection(m["memory_id"], m["agent_id"], m["round"], v)
            nxt = next(pending, None)
        for old, at in superseded_at.items():
            if at <= rnd:
                book.add_conflict(old)
        result.append(book.verdict(rnd, out.round_ends.get(rnd, 0)))
    return result
