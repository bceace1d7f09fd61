"""reflection: per agent, accumulate importance and, when it is time, ask the
LLM (``balanced``) for 3-5 first-person beliefs citing the memories they rest
on. Each belief is a Reflection event and, being a memory too, a ScoredMemory
(kind ``reflection``, importance 7, embedded) so it is retrievable.

When to reflect (the pure function :func:`step` decides):
* threshold: the importance summed since the last reflection reaches
  ``reflection_threshold`` (150, as in Generative Agents);
* rounds: a memory arrives ``reflection_every_rounds`` (5, as in MiroFish)
  or more rounds after the window began, and the window holds memories:
  the agent reflects on that window before the new memory opens the next.
Both are driven by the agent's own memories (event time and rounds, never
wall clock), so the same memories in the same order reflect at the same
points with the same sources. The agent pass (processors/agent.py) gives
it the agent's memories in the order of the agent log, live and in replays.
An agent's reflections are not sources of its later reflections (no echo).

State per agent (part of the agent pass's table): the importance sum, the round
the window began, the top-K memories of the window, and the offset of the
last memory ids applied (a redelivered memory is recognised and skipped).
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.ids import stable_id
from streams.llm import LlmUnavailable, reflection_prompt
from streams.runtime import Incoming, Runtime, with_defaults
from streams.settings import Settings
from streams.vectors import pack

REFLECTION_IMPORTANCE = 7
CONTENT_CHARS = 400


@dataclass(frozen=True)
class Due:
    trigger: str  # threshold | rounds
    sources: list[dict]  # {"id", "text", "importance", "ts"}, most important first
    importance_sum: int
    round: int
    ts: int


SEEN = 64  # memory ids remembered for de-duplication


def load_state(stored: dict | None) -> dict:
    return with_defaults(stored, empty_state())


def empty_state() -> dict:
    return {"seen": [], "sum": 0, "since_round": None, "top": [], "n": 0}


def _add(state: dict, memory: dict, k: int) -> None:
    state["sum"] += memory["importance"]
    if state["since_round"] is None:
        state["since_round"] = memory["round"]
    top = state["top"] + [{"id": memory["memory_id"], "text": memory["content"][:CONTENT_CHARS],
                           "importance": memory["importance"], "ts": memory["ts"]}]
    # Most important first; among equals the more recent; ids break ties.
    top.sort(key=lambda m: (-m["importance"], -m["ts"], m["id"]))
    state["top"] = top[:k]


def _reset(state: dict, round_: int | None) -> None:
    state.update(sum=0, since_round=round_, top=[])
    state["n"] += 1


def step(state: dict, memory: dict, *, threshold: int, every_rounds: int, k: int) -> list[Due]:
    """Apply one memory to an agent's state (in place); return reflections due."""
    due: list[Due] = []
    if memory["kind"] == "reflection" or memory["memory_id"] in state["seen"]:
        # Redelivered memories (at-least-once) must not count twice.
        return due
    state["seen"] = (state["seen"] + [memory["memory_id"]])[-SEEN:]
    if state["top"] and state["since_round"] is not None and memory["round"] - state["since_round"] >= every_rounds:
        due.append(Due("rounds", list(state["top"]), state["sum"], memory["round"], memory["ts"]))
        _reset(state, None)
    _add(state, memory, k)
    if state["sum"] >= threshold:
        due.append(Due("threshold", list(state["top"]), state["sum"], memory["round"], memory["ts"]))
        _reset(state, None)
    return due


def reflections_from(beliefs: list[dict], due: Due, *, sim_id: str, agent_id: str, backend: str,
                     provenance: Incoming) -> list[dict]:
    """Reflection events for the model's beliefs; a belief must cite at least
    one memory that was offered, and only such ids are kept."""
    offered = [s["id"] for s in due.sources]
    known = set(offered)
    out = []
    for i, belief in enumerate(beliefs):
        cited = [sid for sid in dict.fromkeys(belief["sources"]) if sid in known]
        if not cited:
            continue
        out.append({
            "event_id": stable_id("reflection", sim_id, agent_id, due.round, due.trigger, sorted(offered), i),
            "sim_id": sim_id, "round": due.round, "ts": due.ts, "agent_id": agent_id,
            "content": belief["text"], "source_ids": cited, "importance": REFLECTION_IMPORTANCE,
            "trigger": due.trigger, "importance_sum": due.importance_sum, "backend": backend,
            "source_topic": provenance.topic, "source_partition": provenance.partition,
            "source_offset": provenance.offset,
        })
    return out


def as_memory(reflection: dict, embedding: list[float], embedder: str) -> dict:
    return {
        "event_id": stable_id("scored", reflection["event_id"], "reflection"),
        "memory_id": reflection["event_id"], "sim_id": reflection["sim_id"], "round": reflection["round"],
        "ts": reflection["ts"], "agent_id": reflection["agent_id"], "kind": "reflection", "public": False,
        "action": "", "platform": "", "content": reflection["content"], "importance": reflection["importance"],
        "importance_fallback": False, "scorer": f"reflection:{reflection['backend']}", "embedding": [], "embedding_f32": pack(embedding),
        "embedder": embedder,
        "source_topic": reflection["source_topic"], "source_partition": reflection["source_partition"],
        "source_offset": reflection["source_offset"],
    }


class Reflector:
    def __init__(self, rt: Runtime, settings: Settings) -> None:
        self.rt = rt
        self.threshold = settings.reflection_threshold
        self.every = settings.reflection_every_rounds
        self.k = settings.reflection_top_k

    async def agent_events(self, state: dict, items: list[Incoming]) -> tuple[dict, list[dict], list[dict]]:
        """One agent's memories in order -> new state, reflections, their memories."""
        reflections: list[dict] = []
        for inc in items:
            before = {**state, "top": list(state["top"]), "seen": list(state["seen"])}
            for due in step(state, inc.record, threshold=self.threshold, every_rounds=self.every, k=self.k):
                r = inc.record
                try:
                    res = await self.rt.llm.complete_json("balanced", reflection_prompt(r["agent_id"], due.sources),
                                                          sim_id=r["sim_id"], round=r["round"])
                except LlmUnavailable:
                    # Keep the window: the agent reflects at its next trigger.
                    state.update(before)
                    state["seen"] = (state["seen"] + [r["memory_id"]])[-SEEN:]
                    _add(state, r, self.k)
                    break
                backend = "deterministic" if res.backend == "deterministic" else f"vllm:{res.model}"
                reflections += reflections_from(res.data["beliefs"], due, sim_id=r["sim_id"],
                                                 agent_id=r["agent_id"], backend=backend, provenance=inc)
        memories = []
        if reflections:
            try:
                vectors = await self.rt.llm.embed([r["content"] for r in reflections])
                embedder = self.rt.embedder_name
            except LlmUnavailable:
                # Stored without a vector (embedder ""), and embedded later
                # by ``murmur rescore`` (processors/rescore.py).
                vectors, embedder = [[] for _ in reflections], ""
            memories = [as_memory(r, v, embedder) for r, v in zip(reflections, vectors)]
        return state, reflections, memories
