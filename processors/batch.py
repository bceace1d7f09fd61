"""The batch path: the agent pass (``processors/agent.py``) and the verdict
over one simulation's events, without Faust.

Replays and eval run it over what a plain consumer read from the log. Each
agent's events go through the same pass as in a live worker, in the order of
the agent log (the order given here: a consumer keeps each partition's
order), so a replay writes what the live run wrote, to the byte; how the
agents' events are interleaved does not matter.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field

from processors import stance, verdict
from processors.agent import AgentPass, empty_state
from processors.opinion import ALL_FEATURES
from streams.runtime import Incoming
from streams.settings import Settings
from streams.topics import AGENT_LOG, CONFLICTS, REFLECTIONS, SCORED, agent_key

Position = tuple[str, int, int]  # (topic, partition, offset) an event was read at


def run(coro):
    """``asyncio.run(coro)``, without its two ``repr()`` calls on the result
    (CPython issue #112559: the finished task's repr includes its result's).
    On a whole simulation's outputs those cost 40% of the replay's derive
    step: 1.25 s against 0.75 s of CPU (median of 3) for B5's synthetic
    4,011 events (250 agents, 12 rounds), the same outputs."""
    box = []

    async def keep() -> None:
        box.append(await coro)

    asyncio.run(keep())
    return box[0]


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
    stance_inputs: dict[str, list[Incoming]] = field(default_factory=dict)  # agent -> what its stance step read


def in_log_order(events: list[tuple[str, dict]], positions: list[Position] | None = None
                 ) -> list[tuple[str, dict, Position]]:
    """The events as given (the log's order), each id once (the first: a
    redelivered or re-published event is the same event)."""
    seen: set[str] = set()
    out = []
    for i, (t, r) in enumerate(events):
        if r["event_id"] in seen:
            continue
        seen.add(r["event_id"])
        out.append((t, r, positions[i] if positions else (AGENT_LOG.name, 0, i)))
    return out


async def derive(rt: BatchRuntime, events: list[tuple[str, dict]], *, positions: list[Position] | None = None,
                 chunk: int = 1000) -> SimOutputs:
    """Every agent's pass over its events; the stance step's inputs are kept
    for :func:`verdicts` (which runs it, once per ablation)."""
    out = SimOutputs()
    log: list[Incoming] = []
    for t, r, (topic, partition, offset) in in_log_order(events, positions):
        if t == "Simulation":
            out.question = r["question"]
        elif t == "RoundMarker":
            if r["kind"] == "round_end":
                out.round_ends[r["round"]] = max(out.round_ends.get(r["round"], 0), r["ts"])
        elif t in ("Persona", "Post", "Observation"):
            if t == "Persona":
                out.personas[r["agent_id"]] = r
            log.append(Incoming(t, r, topic, partition, offset, agent_key(r["sim_id"], r["agent_id"])))

    async def own_question(_sim: str) -> str:
        return out.question  # scoring on a model backend reads stance in the same call

    one_pass = AgentPass(rt, own_question, run_stance=False)
    states: dict[bytes, dict] = defaultdict(empty_state)
    # Chunks bound what is in flight at once; a pass's outputs do not depend
    # on where the chunks end.
    for start in range(0, len(log), chunk):
        groups: dict[bytes, list[Incoming]] = {}
        for inc in log[start:start + chunk]:
            groups.setdefault(inc.key, []).append(inc)
        for key, result, derived in await one_pass.batch({k: states[k] for k in groups}, groups):
            if isinstance(result, BaseException):
                raise result
            states[key] = result
            for m in derived.of(SCORED):
                (out.reflection_memories if m["kind"] == "reflection" else out.memories).append(m)
            out.reflections += derived.of(REFLECTIONS)
            out.conflicts += derived.of(CONFLICTS)
            agent = groups[key][0].record["agent_id"]
            out.stance_inputs.setdefault(agent, []).extend(derived.stance_inputs)
    return out


async def verdicts(rt, out: SimOutputs, *, sim_id: str, question: str,
                   features: frozenset[str] = frozenset(ALL_FEATURES), reader: stance.Reader | None = None) -> list[dict]:
    """One verdict per round end, by the live path's own functions: per
    author, ``stance.agent_events`` over what the agent pass gave its stance
    step, in that order; then ``verdict.sim_events`` over the contributions
    and the round ends."""
    async def the_question(_sim: str) -> str:
        return question

    contributions: list[dict] = []
    for agent in sorted(out.stance_inputs):
        _, events = await stance.agent_events(rt, stance.empty_state(), out.stance_inputs[agent], the_question,
                                              features=features, reader=reader)
        contributions += events
    items = [Incoming("Stance", c, "sim.stances", 0, i, None) for i, c in enumerate(contributions)]
    items += [Incoming("RoundMarker", {"event_id": f"end-{r}", "sim_id": sim_id, "round": r, "ts": ts,
                                       "kind": "round_end"}, "sim.rounds", 0, r, None)
              for r, ts in sorted(out.round_ends.items())]
    if not items:
        return []
    state = verdict.empty_state()
    state["question"] = question
    _, emitted = verdict.sim_events(state, items, verdict.Applied(lambda _: None), rt.settings.verdict)
    last = {v["round"]: v for v in emitted}
    return [last[r] for r in sorted(last)]
