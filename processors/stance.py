"""stance: each public post's (and reflection's) contribution to the verdict,
computed per author and re-keyed by simulation for the verdict processor.

The expensive, per-agent part of the verdict lives here, keyed by author so
it scales with partitions: the valence toward the question (the lexicon
model offline, the ``fast`` LLM with structured output otherwise, falling
back to the lexicon), stance inertia (a flip needs ceil(10*conviction)
opposing posts) and the weight (credibility x importance; half for a post
against the author's held stance). Personas and conflicts arrive on
co-partitioned topics (same key), so each agent's persona, stance and recent
contributions are one piece of partition-local state. A Conflict retracts
the superseded post's contribution (the verdict counts current beliefs).

The live path has no question text (the simulation's question is an eval
input), so its valence skips the off-topic damping; the eval replay applies
it. Everything else is the same function as ``processors.opinion``.
"""

from __future__ import annotations

import asyncio

import faust

from processors.llm import LlmUnavailable, stance_prompt
from processors.opinion import (ALL_FEATURES, LEXICON, AgentStance, Persona, post_weight, reflection_weight,
                                valence)
from processors.runtime import Incoming, Runtime, register_per_agent, with_defaults
from streams.ids import stable_id
from streams.topics import CONFLICTS, PERSONAS, SCORED, STANCES, sim_key

STAGE = "stance"
TABLES = ('stance-state',)
INPUTS = (SCORED, PERSONAS, CONFLICTS)
RECENT = 64  # contributions kept per agent, to retract superseded posts
FEATURES = frozenset(ALL_FEATURES)


def empty_state() -> dict:
    return {"persona": None, "stance": 0, "opposing": 0, "flips": 0, "recent": [], "seen": []}


def load_state(stored: dict | None) -> dict:
    return with_defaults(stored, empty_state())


def persona_of(state: dict) -> Persona:
    return Persona(*state["persona"]) if state["persona"] else Persona()


def stance_event(r: dict, *, kind: str, memory_id: str, round_: int, v: float, w: float, state: dict,
                 flipped: bool, backend: str) -> dict:
    return {"event_id": stable_id("stance", memory_id, kind), "sim_id": r["sim_id"], "round": round_, "ts": r["ts"],
            "agent_id": r["agent_id"], "memory_id": memory_id, "kind": kind, "valence": round(v, 6),
            "weight": round(w, 6), "agent_stance": state["stance"], "flipped": flipped, "backend": backend}


def apply(state: dict, inc: Incoming, v: float | None, backend: str) -> dict | None:
    """One input -> at most one Stance event; state updated in place."""
    r = inc.record
    if inc.type_name == "Persona":
        state["persona"] = [r["credibility"], r["conviction"], r["initial_stance"]]
        if state["stance"] == 0:
            state["stance"] = 1 if r["initial_stance"] >= 0.15 else -1 if r["initial_stance"] <= -0.15 else 0
        return None
    key = f"{inc.type_name}:{r['event_id']}"
    if key in state["seen"]:
        return None  # redelivered
    state["seen"] = (state["seen"] + [key])[-RECENT:]
    if inc.type_name == "Conflict":
        old = next((c for c in state["recent"] if c[0] == r["old_memory_id"]), None)
        if old is None:
            return None  # not a public contribution (or too old to retract)
        state["recent"] = [c for c in state["recent"] if c[0] != r["old_memory_id"]]
        # Retracted from the conflict's round on: a verdict of an earlier
        # round counts the post as it was believed then (as the batch path
        # does), so no closed round is rewritten retroactively.
        return stance_event(r, kind="retract", memory_id=old[0], round_=max(r["round"], old[1]), v=old[2], w=old[3],
                            state=state, flipped=False, backend=backend)
    persona = persona_of(state)
    if r["kind"] == "reflection":
        w = reflection_weight(persona, FEATURES)
        flipped = False
    else:
        st = AgentStance(state["stance"], state["opposing"], state["flips"])
        against = st.apply(v, persona.conviction, inertia=True)
        flipped = st.flips > state["flips"]
        state.update(stance=st.stance, opposing=st.opposing, flips=st.flips)
        w = post_weight(persona, r["importance"], against=against, features=FEATURES)
    state["recent"] = (state["recent"] + [[r["memory_id"], r["round"], v, w]])[-RECENT:]
    return stance_event(r, kind=r["kind"], memory_id=r["memory_id"], round_=r["round"], v=v, w=w, state=state,
                        flipped=flipped, backend=backend)


def counts(inc: Incoming) -> bool:
    """Inputs this stage acts on: personas, conflicts, public posts, reflections."""
    if inc.type_name != "ScoredMemory":
        return True
    return inc.record["kind"] == "reflection" or inc.record["public"]


async def valence_of(rt: Runtime, inc: Incoming) -> tuple[float | None, str]:
    if inc.type_name != "ScoredMemory":
        return None, LEXICON
    text = inc.record["content"]
    if rt.settings.llm.backend == "deterministic":
        return valence(text), LEXICON
    try:
        res = await rt.llm.complete_json("fast", stance_prompt("", text), sim_id=inc.record["sim_id"],
                                         round=inc.record["round"])
        return float(res.data["valence"]), f"vllm:{res.model}"
    except LlmUnavailable:
        return valence(text), LEXICON  # documented fallback: the lexicon model


async def agent_events(rt: Runtime, state: dict, items: list[Incoming]) -> tuple[dict, list[dict]]:
    relevant = [i for i in items if counts(i)]
    # Valences do not depend on state: compute them all at once, apply in order.
    valences = await asyncio.gather(*(valence_of(rt, i) for i in relevant))
    out = []
    for inc, (v, backend) in zip(relevant, valences):
        event = apply(state, inc, v, backend)
        if event is not None:
            out.append(event)
    return state, out


def register(app: faust.App, rt: Runtime, *, batch_size: int = 1000, within: float = 0.25) -> None:
    async def handle(state: dict, items: list[Incoming]):
        state, events = await agent_events(rt, state, items)
        return state, [(STANCES, sim_key(e["sim_id"]), e) for e in events]

    register_per_agent(app, rt, stage=STAGE, inputs=INPUTS, expected=("ScoredMemory", "Persona", "Conflict"),
                       table_name=TABLES[0], load_state=load_state, handle=handle, batch_size=batch_size,
                       within=within)
