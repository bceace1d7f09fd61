"""stance: each public post's (and reflection's) contribution to the verdict,
computed per author and re-keyed by simulation for the verdict processor.

The expensive, per-agent part of the verdict lives here, keyed by author so
it scales with partitions: the reading of each post toward the simulation's
question (a stance model from ``processors/stance_model.py`` offline, the
``fast`` LLM with structured output otherwise, falling back to the offline
model), stance inertia (a flip needs ceil(10*conviction) opposing posts) and
the weight (credibility x importance; half for a post against the author's
held stance). The agent pass (processors/agent.py) gives it the agent's
persona, posts, reflections and conflicts in log order, so each agent's
persona, stance and recent contributions are one piece of partition-local
state. A Conflict retracts the superseded contribution (the verdict counts
current beliefs).

Every counted input yields one Stance event, including what does not move
the ratio, so the verdict can say what it rests on: a post the model could
not read (weight 0, ``reading=unreadable``) and a reflection no model that
read the posts wrote (weight 0, ``reading=excluded``: the deterministic
backend's templates say nothing about the question). On a model backend a
post's reading was made by the scoring call itself (importance and valence
in one call, ``valence`` on the ScoredMemory); only what it did not read is
read here.

The question comes from the simulation's Simulation event, which is keyed
by simulation and so not co-partitioned with agents: ``processors/
questions.py`` reads it for the whole process. Replays (``processors/
batch.py``) run these same functions with the question they read.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Awaitable, Callable

from streams.llm import LlmUnavailable, stance_prompt
from processors.opinion import ALL_FEATURES, AgentStance, Persona, post_weight, reflection_weight
from streams.llm.fanout import together
from streams.runtime import Incoming, with_defaults
from processors.stance_model import UNREADABLE, Reading, StanceModel, make_model, status_of
from streams.ids import stable_id

RECENT = 64  # contributions kept per agent, to retract superseded ones
EXCLUDED = "excluded"

Question = Callable[[str], Awaitable[str]]  # sim id -> its question


def empty_state() -> dict:
    # emitted: how many Stance events this agent has emitted (each carries its
    # number as ``seq``, so the verdict keeps one number per agent to know
    # what it applied, not one key per contribution).
    return {"persona": None, "stance": 0, "opposing": 0, "flips": 0, "recent": [], "seen": [], "emitted": 0}


def load_state(stored: dict | None) -> dict:
    return with_defaults(stored, empty_state())


def persona_of(state: dict) -> Persona:
    return Persona(*state["persona"]) if state["persona"] else Persona()


@lru_cache(maxsize=4)
def offline_model(spec: str) -> StanceModel:
    return make_model(spec)


def reflection_counts(memory: dict, policy: str) -> bool:
    """A reflection counts when a model that read the posts wrote it
    (``scorer`` is ``reflection:<backend>``); "all" counts templates too."""
    if policy == "all":
        return True
    scorer = memory.get("scorer", "")
    return policy == "model" and scorer.startswith("reflection:") and not scorer.endswith(":deterministic")


def stance_event(r: dict, *, kind: str, memory_id: str, round_: int, v: float, w: float, state: dict,
                 flipped: bool, backend: str, reading: str, language: str = "", retracted_kind: str = "",
                 reliability: float = 1.0) -> dict:
    state["emitted"] += 1
    return {"event_id": stable_id("stance", memory_id, kind), "sim_id": r["sim_id"], "round": round_, "ts": r["ts"],
            "agent_id": r["agent_id"], "memory_id": memory_id, "kind": kind, "valence": round(v, 6),
            "weight": round(w, 6), "agent_stance": state["stance"], "flipped": flipped, "backend": backend,
            "reading": reading, "language": language, "retracted_kind": retracted_kind,
            "reliability": round(reliability, 6), "seq": state["emitted"]}


def apply(state: dict, inc: Incoming, reading: Reading | None, *, features: frozenset[str] = frozenset(ALL_FEATURES),
          reflections: str = "model") -> dict | None:
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
        if "contradiction" not in features:
            return None
        old = next((c for c in state["recent"] if c[0] == r["old_memory_id"]), None)
        if old is None:
            return None  # not a counted contribution (or too old to retract)
        state["recent"] = [c for c in state["recent"] if c[0] != r["old_memory_id"]]
        kind, how = (old[4], old[5]) if len(old) > 5 else ("post", status_of(old[2]))
        # Retracted from the conflict's round on: a verdict of an earlier
        # round counts the post as it was believed then, so no closed round
        # is rewritten retroactively.
        return stance_event(r, kind="retract", memory_id=old[0], round_=max(r["round"], old[1]), v=old[2], w=old[3],
                            state=state, flipped=False, backend="", reading=how, retracted_kind=kind)
    persona = persona_of(state)
    kind = r["kind"]
    if kind == "reflection":
        if "reflection" not in features:
            return None
        if not reflection_counts(r, reflections):
            return stance_event(r, kind=kind, memory_id=r["memory_id"], round_=r["round"], v=0.0, w=0.0, state=state,
                                flipped=False, backend="", reading=EXCLUDED)
    assert reading is not None, "a post or reflection needs a reading"
    if reading.status == UNREADABLE:
        return stance_event(r, kind=kind, memory_id=r["memory_id"], round_=r["round"], v=0.0, w=0.0, state=state,
                            flipped=False, backend=reading.model, reading=UNREADABLE, language=reading.language,
                            reliability=reading.reliability)
    v = reading.valence
    if kind == "reflection":
        w = reflection_weight(persona, features)
        flipped = False
    else:
        st = AgentStance(state["stance"], state["opposing"], state["flips"])
        against = st.apply(v, persona.conviction, inertia="conviction" in features)
        flipped = st.flips > state["flips"]
        state.update(stance=st.stance, opposing=st.opposing, flips=st.flips)
        w = post_weight(persona, r["importance"], against=against, features=features)
    state["recent"] = (state["recent"] + [[r["memory_id"], r["round"], v, w, kind, reading.status]])[-RECENT:]
    return stance_event(r, kind=kind, memory_id=r["memory_id"], round_=r["round"], v=v, w=w, state=state,
                        flipped=flipped, backend=reading.model, reading=reading.status, language=reading.language,
                        reliability=reading.reliability)


def counts(inc: Incoming) -> bool:
    """Inputs this stage acts on: personas, conflicts, public posts, reflections."""
    if inc.type_name != "ScoredMemory":
        return True
    return inc.record["kind"] == "reflection" or inc.record["public"]


def needs_reading(inc: Incoming, reflections: str) -> bool:
    return (inc.type_name == "ScoredMemory"
            and (inc.record["kind"] != "reflection" or reflection_counts(inc.record, reflections)))


def carried(rt, record: dict) -> Reading | None:
    """The reading the scoring call made along with the importance (a model
    backend reads a post's valence in that same call), or None."""
    v = record.get("valence")
    if v is None:
        return None
    return Reading(float(v), status_of(float(v)), "", record["scorer"], rt.settings.verdict.llm_reliability)


@lru_cache(maxsize=16384)
def offline_reading(spec: str, text: str, question: str) -> Reading:
    """The offline model's reading, once per text and question: a pure
    function of them (Reading is frozen), and reading (language
    identification, VADER) was the largest part of a replay's stance step."""
    return offline_model(spec).read(text, question)


async def reading_of(rt, text: str, question: str, *, sim_id: str, round_: int) -> Reading:
    spec = rt.settings.verdict.stance_model
    if rt.settings.llm.backend == "deterministic":
        return offline_reading(spec, text, question)
    try:
        res = await rt.llm.complete_json("fast", stance_prompt(question, text), sim_id=sim_id, round=round_)
    except LlmUnavailable:
        return offline_reading(spec, text, question)  # documented fallback: the offline model
    v = float(res.data["valence"])
    return Reading(v, status_of(v), "", f"vllm:{res.model}", rt.settings.verdict.llm_reliability)


Reader = Callable[..., Awaitable[Reading]]  # (rt, text, question, *, sim_id, round_) -> Reading


async def agent_events(rt, state: dict, items: list[Incoming], question: Question, *,
                       features: frozenset[str] = frozenset(ALL_FEATURES),
                       reader: Reader | None = None) -> tuple[dict, list[dict]]:
    policy = rt.settings.verdict.reflections
    read = reader or reading_of
    relevant = [i for i in items if counts(i)]
    wanted = [i for i in relevant if needs_reading(i, policy)]
    by_input = {id(i): rd for i in wanted if (rd := carried(rt, i.record)) is not None}
    asked = [i for i in wanted if id(i) not in by_input]
    questions = {sim: await question(sim) for sim in dict.fromkeys(i.record["sim_id"] for i in asked)}
    # Readings do not depend on state: all at once, applied in order.
    readings = await together(rt.llm, (read(rt, i.record["content"], questions[i.record["sim_id"]],
                                            sim_id=i.record["sim_id"], round_=i.record["round"]) for i in asked))
    by_input.update((id(i), rd) for i, rd in zip(asked, readings))
    out = []
    for inc in relevant:
        event = apply(state, inc, by_input.get(id(inc)), features=features, reflections=policy)
        if event is not None:
            out.append(event)
    return state, out
