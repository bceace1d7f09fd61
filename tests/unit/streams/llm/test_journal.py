"""The LLM answer journal, without Kafka: what identifies a request, hits, misses."""

import asyncio

import pytest

from streams.llm import DeterministicLlm, LlmUnavailable, importance_prompt, memory_prompt
from streams.llm.journal import Journal, JournalLlm, answer_text, fingerprint, load
from streams.llm.records import make_record
from streams.settings import LlmSettings

SETTINGS = LlmSettings(backend="vllm")


def recorded(prompt, data, *, role="fast", model=None, answered_by=None):
    """An LlmCall record as the vLLM client writes it."""
    model = model or getattr(SETTINGS, role).model
    return make_record(backend="vllm", role=role, model=answered_by or model, status="ok", attempts=1,
                       cache_key=prompt.default_cache_key(), prompt_tokens=1, completion_tokens=1, latency_ms=1.0,
                       sim_id="s", task=prompt.task, fingerprint=fingerprint(model, prompt), answer=answer_text(data))


def test_the_fingerprint_is_the_model_the_schema_and_the_messages():
    p = importance_prompt("hello")
    assert fingerprint("m", p) == fingerprint("m", importance_prompt("hello"))
    assert len({fingerprint("m", p), fingerprint("n", p), fingerprint("m", importance_prompt("hello!")),
                fingerprint("m", memory_prompt([{"content": "hello", "kind": "post"}]))}) == 4


def test_a_replay_is_answered_from_the_journal_and_a_miss_is_counted_not_sent():
    p = importance_prompt("hello")
    journal = load([recorded(p, {"importance": 7}, answered_by="fallback-model"),
                    {**recorded(importance_prompt("failed"), {"importance": 1}), "answer": None}],
                   [{"content": "hello", "v": [0.6, 0.8]}], lambda m: m["v"])
    llm = JournalLlm(journal, SETTINGS)

    async def go():
        hit = await llm.complete_json("fast", p)
        assert hit.data == {"importance": 7} and hit.model == "fallback-model" and hit.status == "journal"
        with pytest.raises(LlmUnavailable, match="journal miss"):
            await llm.complete_json("fast", importance_prompt("failed"))  # failed live: nothing to replay
        with pytest.raises(LlmUnavailable):
            await llm.complete_json("balanced", p)  # another model: another request
        assert await llm.embed(["hello"]) == [[0.6, 0.8]]
        with pytest.raises(LlmUnavailable, match="1 of 2"):
            await llm.embed(["hello", "unseen"])

    asyncio.run(go())
    assert journal.summary() == {"answers": 1, "vectors": 1, "hits": 3, "misses": 3,
                                 "misses_by_task": {"importance": 2, "embed": 1}}


def test_fill_asks_the_model_on_a_miss_only():
    calls = []
    model = DeterministicLlm(LlmSettings(), calls.append)
    journal = Journal()
    journal.add_call(recorded(importance_prompt("known"), {"importance": 9}))
    llm = JournalLlm(journal, SETTINGS, model_llm=model)

    async def go():
        known = await llm.complete_json("fast", importance_prompt("known"))
        new = await llm.complete_json("fast", importance_prompt("new text"))
        vectors = await llm.embed(["new text"])
        return known, new, vectors

    known, new, vectors = asyncio.run(go())
    assert known.data == {"importance": 9} and new.backend == "deterministic" and len(vectors[0]) == 384
    assert [c["task"] for c in calls] == ["importance", "embed"]


class _Model:
    """A stand-in for the live client: records what reaches it."""

    waits = True

    def __init__(self):
        self.asked, self.embedded = [], []

    async def complete_json(self, role, prompt, **kw):
        self.asked.append(prompt.task)
        return "from the model"

    async def embed(self, texts, **kw):
        self.embedded.append(list(texts))
        return [[float(len(t)), 0.0] for t in texts]

    async def aclose(self):
        self.asked.append("closed")


def test_a_resumed_worker_answers_what_was_asked_before_and_sends_the_rest():
    from streams.llm.journal import ResumedLlm
    from streams.llm.metrics import JOURNAL_ANSWERS

    p = importance_prompt("hello")
    journal = load([recorded(p, {"importance": 7})], [{"content": "hello", "v": [0.6, 0.8]}], lambda m: m["v"])
    model = _Model()
    llm = ResumedLlm(journal, SETTINGS, model)
    before = JOURNAL_ANSWERS.labels(task="embed")._value.get()

    async def go():
        hit = await llm.complete_json("fast", p, sim_id="s")
        assert hit.data == {"importance": 7} and hit.status == "journal" and hit.attempts == 0
        assert await llm.complete_json("fast", importance_prompt("new")) == "from the model"
        assert await llm.embed(["new", "hello", "newer"]) == [[3.0, 0.0], [0.6, 0.8], [5.0, 0.0]]
        assert await llm.embed(["hello"]) == [[0.6, 0.8]]
        await llm.aclose()

    asyncio.run(go())
    assert model.asked == ["importance", "closed"] and model.embedded == [["new", "newer"]]
    assert llm.waits is True  # what the pipeline reads of a client comes from the live one
    assert JOURNAL_ANSWERS.labels(task="embed")._value.get() == before + 2


def test_a_resumed_worker_answers_only_the_same_simulations_requests():
    """The same prompt in another simulation (template text, a second run of
    one scenario) goes to the model, so that simulation journals its own
    answer and replays without a miss."""
    from streams.llm.journal import ResumedLlm

    p = importance_prompt("the same words")
    journal = load([recorded(p, {"importance": 7})], [], lambda m: m["v"])  # recorded under sim "s"
    model = _Model()
    llm = ResumedLlm(journal, SETTINGS, model)

    async def go():
        assert (await llm.complete_json("fast", p, sim_id="s")).data == {"importance": 7}
        assert await llm.complete_json("fast", p, sim_id="another") == "from the model"

    asyncio.run(go())
    assert model.asked == ["importance"]
    assert JournalLlm(journal, SETTINGS).journal.answer(fingerprint(SETTINGS.fast.model, p)) == ({"importance": 7},
                                                                                                SETTINGS.fast.model)
