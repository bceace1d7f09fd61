"""rescore: memories stored while the LLM was down, scored again once it is back.

While every attempt and fallback fails (an outage), the agent pass keeps
going with its documented fallbacks: importance 5 (``importance_fallback``
on the ScoredMemory), no vector when the embedder failed (``embedder``
empty), the offline stance model for the post's reading. Such a memory is
*degraded*: it ranks wrongly in retrieval, or not at all. ``murmur
rescore`` finds the latest version of each memory of a simulation on the
scored topic, asks the model again for the degraded ones (the memory call,
and the embedder for missing vectors), and publishes the corrected
ScoredMemory: the same memory id, so the sinks overwrite the row and the
point (they key by memory id), with an id of its own that depends only on
the memory and the scorer, so running it twice changes nothing.

What it does not redo: contradictions with the agent's earlier memories
(the window they were judged against is the agent's state of that time),
the reflection the fallback importance counted toward, and the stance
contribution already read by the offline model (the verdict of a closed
round is never rewritten). A replay (``murmur replay --journal fill``)
recomputes all of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Awaitable, Callable, Iterable

from processors import importance as imp
from processors import memory_call as mc
from streams.ids import stable_id
from streams.llm import LlmUnavailable
from streams.vectors import pack, vector_of


def degraded(memory: dict) -> bool:
    """Scored with the fallback importance, or stored without a vector."""
    return bool(memory["importance_fallback"]) or (not len(vector_of(memory)) and bool(memory["content"]))


def latest(memories: Iterable[dict]) -> dict[str, dict]:
    """Each memory's last version, by memory id (records in log order)."""
    out: dict[str, dict] = {}
    for m in memories:
        out[m["memory_id"]] = m
    return out


@dataclass
class Outcome:
    rescored: list[dict] = field(default_factory=list)  # corrected ScoredMemory records
    still_degraded: list[str] = field(default_factory=list)  # memory ids the model could not score now


async def rescore(rt, memories: list[dict], question: Callable[[str], Awaitable[str]]) -> Outcome:
    """Corrected records for the degraded memories given."""
    out = Outcome()
    todo = [m for m in memories if degraded(m)]
    need_vectors = [m for m in todo if not len(vector_of(m))]
    vectors: dict[str, list[float]] = {}
    if need_vectors:
        try:
            got = await rt.llm.embed([m["content"] for m in need_vectors])
            vectors = {m["memory_id"]: v for m, v in zip(need_vectors, got)}
        except LlmUnavailable:
            pass
    for m in todo:
        fixed = dict(m)
        if m["importance_fallback"]:
            kind = "reflection" if m["kind"] == "reflection" else imp.kind_of(m["action"])
            reply = await mc.ask(rt, [mc.Statement(kind, m["content"], [])], await question(m["sim_id"]),
                                 sim_id=m["sim_id"], round_=m["round"])
            if reply.answers is not None:
                answer = reply.answers[0]
                fixed.update(importance=answer.importance, importance_fallback=False,
                             scorer=imp.scorer_name(rt, reply.model))
                if m["public"] and mc.reads_stance(rt):
                    fixed["valence"] = answer.valence
        if m["memory_id"] in vectors:
            fixed.update(embedding=[], embedding_f32=pack(vectors[m["memory_id"]]), embedder=rt.embedder_name)
        if degraded(fixed):
            out.still_degraded.append(m["memory_id"])
        if fixed != m:
            fixed["event_id"] = stable_id("rescored", m["memory_id"], fixed["scorer"], fixed["embedder"])
            out.rescored.append(fixed)
    return out


def run(settings, sim_id: str) -> dict:
    """Rescore a simulation's degraded memories on the scored topic of
    ``settings.namespace`` and publish the corrected records; counts."""
    import asyncio

    from processors.batch import BatchRuntime
    from processors.questions import Questions
    from streams.errors import DecodeError, MurmurError
    from streams.kafka import BatchProducer, make_producer, read_to_end
    from streams.llm import make_llm
    from streams.llm.embedder import embedder_name
    from streams.serde import default_serde
    from streams.topics import SCORED, agent_key, may_be_of_sim, topic_name

    serde = default_serde()
    topic = topic_name(SCORED, settings.namespace)
    records = []
    for msg in read_to_end(settings, topic):
        if not may_be_of_sim(msg.key(), sim_id):
            continue  # another simulation's memory (keyed sim/agent): not decoded
        try:
            _, r = serde.decode(msg.value())
        except DecodeError:
            continue  # dead-lettered where it was read
        if r["sim_id"] == sim_id:
            records.append(r)
    current = list(latest(records).values())
    if not current:
        raise MurmurError(f"no memories of simulation {sim_id!r} on {topic}")

    async def go() -> Outcome:
        llm = make_llm(settings)
        try:
            return await rescore(BatchRuntime(settings, llm, embedder_name(settings.llm)), current,
                                 Questions(settings).of)
        finally:
            await llm.aclose()

    outcome = asyncio.run(go())
    producer = BatchProducer(make_producer(settings))
    for r in outcome.rescored:
        producer.send(topic, agent_key(r["sim_id"], r["agent_id"]), serde.encode("ScoredMemory", r, topic=topic))
    producer.flush_blocking()
    return {"sim": sim_id, "memories": len(current), "degraded": sum(degraded(m) for m in current),
            "rescored": len(outcome.rescored), "still_degraded": len(outcome.still_degraded)}
