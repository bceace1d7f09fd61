"""importance: every Post and Observation becomes a ScoredMemory.

The LLM (role ``fast``) rates each memory 1..10 with structured output, in
the agent pass's one call per memory (``processors/memory_call.py``), which
also reads a public post's valence toward its simulation's question (carried
on the ScoredMemory for the stance step); if every attempt and fallback
fails, the documented fallback 5 is used and
counted (``importance_fallback`` on the event, a Prometheus counter). The
embedding of the content travels on the same event, so the contradiction
processor and the Qdrant sink never compute it again.

Offline (``MURMUR_LLM__BACKEND=deterministic``, the default) the rating comes
from the deterministic backend's content features (length, charged words,
opinion markers, entities, numbers; observations capped low): see
``streams/llm/deterministic.py``. Every event records which scorer made it.

The embeddings of a batch's new memories are one call. The pass
remembers the event ids it has scored (the last ``MURMUR_IMPORTANCE_SEEN_IDS``,
200,000 by default, per worker process): an input re-sent with the same id (a
publisher that resumed, a file published twice) is skipped and costs no LLM
call; what it produced the first time is already downstream. The memory is
the process's, not a Faust table: a changelog record per event made
restarts recover slowly and stall (see docs/adr/0002), and after a worker
restart a re-sent event is only scored again, with the same output id.
"""

from __future__ import annotations

from collections import OrderedDict

from processors.memory_call import Reply, reads_stance
from streams.ids import stable_id
from streams.llm import IMPORTANCE_FALLBACK, LlmUnavailable
from streams.metrics import EMBED_FAILURES, IMPORTANCE_FALLBACKS
from streams.runtime import Incoming, Runtime
from streams.vectors import pack


# MiroFish/OASIS action -> the event kind the prompt names.
KIND_OF_ACTION = {
    "CREATE_POST": "post", "QUOTE_POST": "quote", "CREATE_COMMENT": "comment", "REPOST": "repost",
    "LIKE_POST": "like", "LIKE_COMMENT": "like", "DISLIKE_POST": "react", "DISLIKE_COMMENT": "react",
    "FOLLOW": "follow", "MUTE": "mute", "SEARCH_POSTS": "view", "SEARCH_USER": "view", "TREND": "view",
    "REFRESH": "view", "INTERVIEW": "interview",
}


def kind_of(action: str) -> str:
    return KIND_OF_ACTION.get(action, action.lower())


def to_memory(inc: Incoming, *, importance: int, scorer: str, fallback: bool = False,
              embedding: list[float] | bytes | None = None, embedder: str = "", valence: float | None = None) -> dict:
    """The ScoredMemory for one input; its id depends only on the input and
    the scorer, so re-scoring the same event rewrites the same row."""
    r = inc.record
    return {
        "event_id": stable_id("scored", r["event_id"], scorer),
        "memory_id": r["event_id"],
        "sim_id": r["sim_id"],
        "round": r["round"],
        "ts": r["ts"],
        "agent_id": r["agent_id"],
        "kind": "post" if inc.type_name == "Post" else "observation",
        "public": inc.type_name == "Post",
        "action": r["action"],
        "platform": r.get("platform", ""),
        "content": r["content"],
        "importance": importance,
        "importance_fallback": fallback,
        "scorer": scorer,
        "embedding": [],
        "embedding_f32": pack(embedding),
        "embedder": embedder,
        "valence": valence,
        "source_topic": inc.topic,
        "source_partition": inc.partition,
        "source_offset": inc.offset,
    }


def window_draft(inc: Incoming, embedding: bytes | None) -> dict:
    """What the contradiction window reads of a memory before its call
    (``processors/contradiction.Window.candidates``), and whose it is: the
    fields :func:`to_memory` would give them, without building the whole
    record and its id, which the call's answer replaces anyway."""
    r = inc.record
    return {"memory_id": r["event_id"], "sim_id": r["sim_id"], "agent_id": r["agent_id"], "ts": r["ts"],
            "content": r["content"], "embedding": [], "embedding_f32": pack(embedding)}


def memory_of(rt: Runtime, inc: Incoming, reply: Reply, *, embedding: list[float] | bytes | None, embedder: str) -> dict:
    """The ScoredMemory from the memory call's reply (its first statement):
    the importance, and for a public post on a model backend the valence
    too; the fallback importance when the call failed."""
    if reply.answers is None:
        IMPORTANCE_FALLBACKS.inc()
        return to_memory(inc, importance=IMPORTANCE_FALLBACK, scorer=scorer_name(rt), fallback=True,
                         embedding=embedding, embedder=embedder)
    answer = reply.answers[0]
    carries = inc.type_name == "Post" and reads_stance(rt)
    return to_memory(inc, importance=answer.importance, scorer=scorer_name(rt, reply.model), embedding=embedding,
                     embedder=embedder, valence=answer.valence if carries else None)


def scorer_name(rt: Runtime, model: str | None = None) -> str:
    if rt.settings.llm.backend == "deterministic":
        return "deterministic"
    return f"vllm:{model or rt.settings.llm.fast.model}"


async def embed(rt: Runtime, texts: list[str]) -> list[list[float]] | None:
    """Embeddings, or None when the embedder is unavailable: the memories are
    still scored and stored, only not vector-searchable (counted)."""
    try:
        return await rt.llm.embed(texts)
    except LlmUnavailable:
        EMBED_FAILURES.inc(len(texts))
        return None


def split_new(batch: list[Incoming], scored_before) -> tuple[list[Incoming], int]:
    """Inputs not scored before (first of each id), and how many were repeats."""
    fresh, ids = [], set()
    for inc in batch:
        event_id = inc.record["event_id"]
        if event_id in ids or scored_before(event_id):
            continue
        ids.add(event_id)
        fresh.append(inc)
    return fresh, len(batch) - len(fresh)


class ScoredIds:
    """The most recent event ids scored, bounded."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._ids

    def add(self, ids: list[str]) -> None:
        for event_id in ids:
            self._ids[event_id] = None
            self._ids.move_to_end(event_id)
        while len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
