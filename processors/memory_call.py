"""memory_call: one LLM call for what the agent pass needs of new memories.

A new post or observation needs its importance, a post its stance valence
toward the simulation's question, and every new memory a verdict against
its nearest earlier memories (contradiction). Asked separately that was
4.6 calls an event; asked together it is one (``streams/llm/prompts.py``
``memory_prompt``). The beliefs of one reflection are read in one call the
same way (their valence and contradictions; their importance is fixed).

A call that fails (every attempt and fallback, ``LlmUnavailable``) gives no
answers: the caller applies its documented fallbacks (importance 5, no
conflict edge, the offline stance model).
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.llm import LlmUnavailable, memory_prompt
from streams.runtime import Runtime


@dataclass(frozen=True)
class Statement:
    kind: str  # post, comment, like, ..., reflection
    content: str
    earlier: list[str]  # texts of the candidate earlier memories, nearest first


@dataclass(frozen=True)
class Answer:
    importance: int
    valence: float
    contradicts: dict[int, str]  # 1-based position in Statement.earlier -> reason


@dataclass(frozen=True)
class Reply:
    answers: list[Answer] | None  # one per statement, or None: the LLM was unavailable
    backend: str  # "deterministic" or "vllm:<model>" (what a Conflict records)
    model: str


def reads_stance(rt: Runtime) -> bool:
    """Whether a memory carries the valence its call read. A model backend's
    does (the stance step then makes no call of its own); the deterministic
    backend leaves stance to the offline stance model (processors/stance_model.py)."""
    return rt.settings.llm.backend != "deterministic"


async def ask(rt: Runtime, statements: list[Statement], question: str, *, sim_id: str, round_: int) -> Reply:
    prompt = memory_prompt([{"kind": s.kind, "content": s.content, "earlier": s.earlier} for s in statements],
                           question=question)
    try:
        res = await rt.llm.complete_json("fast", prompt, sim_id=sim_id, round=round_)
    except LlmUnavailable:
        return Reply(None, "", "")
    by_number = {a["statement"]: a for a in res.data["statements"]}
    answers = [Answer(int(a["importance"]), float(a["valence"]), {c["earlier"]: c["reason"] for c in a["contradicts"]})
               for a in (by_number[i] for i in range(1, len(statements) + 1))]
    backend = "deterministic" if res.backend == "deterministic" else f"vllm:{res.model}"
    return Reply(answers, backend, res.model)
