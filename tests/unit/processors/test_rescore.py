"""Degraded memories scored again, without Kafka."""

import asyncio
from types import SimpleNamespace

from processors import rescore as rs
from streams.llm import DeterministicLlm, LlmUnavailable
from streams.settings import LlmSettings, Settings
from streams.vectors import pack, vector_of


def memory(mid, *, fallback=False, vector=True, kind="post", content="The levy is a disaster for 200 shops!"):
    return {"event_id": f"e-{mid}", "memory_id": mid, "sim_id": "s", "round": 1, "ts": 1, "agent_id": "a",
            "kind": kind, "public": kind == "post", "action": "CREATE_POST", "platform": "", "content": content,
            "importance": 5 if fallback else 6, "importance_fallback": fallback, "scorer": "vllm:m", "embedding": [],
            "embedding_f32": pack([0.6, 0.8]) if vector else b"", "embedder": "vllm:e" if vector else "",
            "valence": None, "source_topic": "t", "source_partition": 0, "source_offset": 0}


class Down(DeterministicLlm):
    async def complete_json(self, *a, **k):
        raise LlmUnavailable("down")

    async def embed(self, *a, **k):
        raise LlmUnavailable("down")


def runtime(llm, backend="vllm"):
    settings = Settings(llm=LlmSettings(backend=backend))
    return SimpleNamespace(settings=settings, llm=llm, embedder_name="vllm:e")


async def no_question(_sim):
    return "Is the levy good?"


def test_degraded_means_the_fallback_importance_or_no_vector():
    assert rs.degraded(memory("1", fallback=True)) and rs.degraded(memory("2", vector=False))
    assert not rs.degraded(memory("3")) and not rs.degraded(memory("4", vector=False, content=""))
    assert rs.latest([memory("1", fallback=True), memory("2"), memory("1")])["1"]["importance_fallback"] is False


def test_a_degraded_memory_is_scored_again_under_an_id_of_its_own_and_the_same_memory_id():
    rt = runtime(DeterministicLlm(Settings()))
    mems = [memory("1", fallback=True, vector=False), memory("2"), memory("3", vector=False, kind="reflection")]
    out = asyncio.run(rs.rescore(rt, mems, no_question))
    assert [m["memory_id"] for m in out.rescored] == ["1", "3"] and out.still_degraded == []
    first, refl = out.rescored
    assert first["importance_fallback"] is False and first["importance"] != 5 and first["valence"] < 0
    assert len(vector_of(first)) == 384 and first["embedder"] == "vllm:e" and first["event_id"] != "e-1"
    assert refl["importance"] == 6 and len(vector_of(refl)) == 384  # a reflection keeps its importance
    again = asyncio.run(rs.rescore(rt, mems, no_question))
    assert again.rescored == out.rescored  # the same records: publishing twice changes nothing
    assert not any(rs.degraded(m) for m in out.rescored)


def test_while_the_model_is_still_down_nothing_changes_and_it_is_counted():
    mems = [memory("1", fallback=True, vector=False)]
    out = asyncio.run(rs.rescore(runtime(Down(Settings())), mems, no_question))
    assert out.rescored == [] and out.still_degraded == ["1"]
