"""The batch path's speed-ups keep its outputs to the byte.

A replay must write what the live run wrote (tests/integration/
test_batch_equivalence.py compares the two paths); these tests pin that the
caches and shortcuts of the compute (bench/b5_compute.py measures it) change
no output: the Avro bytes of every output of a small simulation equal those
the code gave before them, with the caches cold and warm, and each cached
function equals its uncached computation.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

from bench.b5_compute import clear_text_caches, compute, digest
from connectors import synthetic
from processors import contradiction as con
from processors import stance
from streams.llm import deterministic as det
from streams.llm import lexicon as lx
from streams.llm.embedder import _hash_embed_row, hash_embed, hash_embed_array
from streams.settings import Settings, VerdictSettings

CASE = Path(__file__).resolve().parents[3] / "eval" / "cases" / "new_coke_1985"
# sha256 over the outputs' Avro bytes (bench/b5_compute.digest) as the code
# gave them before the replay caches (commit 50264b4), for the run below.
BEFORE = "4789fb7361392883019513b18ce55c63cf30a1c1f941d2cdd9457bd3f4f1ff6e"


@pytest.fixture(scope="module")
def sim():
    run = synthetic.generate(CASE, sim_id="pin", seed=5, agents=24, rounds=6)
    # Reflections every 2 rounds and template reflections counted: every
    # output kind occurs (conflicts, reflections, retractions, verdicts).
    settings = Settings().model_copy(update={"verdict": VerdictSettings(reflections="all"),
                                             "reflection_every_rounds": 2})
    return [(e.type_name, e.record) for e in run.events], settings


def test_batch_outputs_are_the_bytes_they_were_with_caches_cold_and_warm(sim):
    events, settings = sim
    clear_text_caches()
    _, cold = compute(events, "pin", settings)
    _, warm = compute(events, "pin", settings)
    assert digest(cold)["records"] == {"ScoredMemory": 272, "Reflection": 103, "Conflict": 3, "Verdict": 6}
    assert digest(cold)["sha256"] == BEFORE
    assert digest(warm)["sha256"] == BEFORE


def texts(sim) -> list[str]:
    events, _ = sim
    return sorted({r["content"] for t, r in events if t in ("Post", "Observation")})[:60] + [
        "", "Not good at all!!", "The Mayor's plan isn't terrible, 3 parks?", "ünïcode — text…"]


def test_cached_text_functions_equal_their_uncached_computation(sim):
    for text in texts(sim):
        assert lx.tokens(text) == tuple(t.lower() for t in lx._TOKEN.findall(text))
        for w in lx.tokens(text):
            assert lx.stem(w) == lx.stem.__wrapped__(w)
        for kind in ("post", "like", "repost"):
            assert det.importance(text, kind) == det.importance.__wrapped__(text, kind)
        assert hash_embed(text, 384) == hash_embed_array(text, 384).tolist()
        for question in ("", "Should the new formula replace the old one?"):
            model = stance.offline_model("lexicon")
            assert stance.offline_reading("lexicon", text, question) == model.read(text, question)


def test_a_caller_cannot_change_a_cached_value():
    vec = hash_embed("the same text twice", 384)
    vec[0] = 99.0
    assert hash_embed("the same text twice", 384)[0] != 99.0
    with pytest.raises(ValueError):
        _hash_embed_row("the same text twice", 384)[0] = 99.0
    assert isinstance(lx.tokens("a b c"), tuple)
    assert isinstance(con._codes(con.quantise([0.6, 0.8, 0.0])), bytes)


def test_quantise_gives_the_codes_np_clip_gave():
    rng = np.random.default_rng(3)
    for vec in [rng.normal(size=384) / 19.6, rng.normal(size=384) * 3, np.zeros(384), np.array([0.5 / 127, -1.5 / 127])]:
        codes = np.clip(np.rint(np.asarray(vec, dtype=np.float64) * 127), -127, 127).astype(np.int8)
        assert base64.b64decode(con.quantise(vec.tolist())) == codes.tobytes()
        assert con.quantise(vec.tolist()) == con.quantise(vec.tolist(), mode="python")


def test_window_similarities_equal_decoding_the_window_each_time():
    rng = np.random.default_rng(7)
    vecs = rng.normal(size=(33, 384))
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    window = [{"v": con.quantise(v.tolist())} for v in vecs[:32]]
    q = vecs[32].astype(np.float32)
    # The decode the similarities did before the per-row cache.
    mat = np.frombuffer(b"".join(base64.b64decode(m["v"]) for m in window), dtype=np.int8)
    mat = mat.reshape(len(window), -1).astype(np.float64)
    qq = np.asarray(q, dtype=np.float64)
    norms = np.sqrt(np.einsum("ij,ij->i", mat, mat)) * np.sqrt(float(qq @ qq))
    assert con.similarities(window, q) == [float(d / n) for d, n in zip(mat @ qq, norms)]


def test_a_prompts_cache_key_is_the_sha256_of_its_whole_text():
    import hashlib

    from streams.llm import importance_prompt, memory_prompt, reflection_prompt

    for prompt in (importance_prompt("A post about the park!", kind="post"),
                   memory_prompt([{"kind": "post", "content": "New", "earlier": ["Old one", "Older"]}], question="Q?"),
                   reflection_prompt("a1", [{"id": "m1", "text": "remembered"}])):
        body = f"{prompt.schema_name}\n{prompt.system}\n{prompt.user}"
        assert prompt.default_cache_key() == hashlib.sha256(body.encode()).hexdigest()[:32]


def test_the_window_draft_is_what_the_whole_memory_gives_the_window():
    from processors import importance as imp
    from streams.runtime import Incoming

    inc = Incoming("Post", {"event_id": "e1", "sim_id": "s", "round": 2, "ts": 7, "agent_id": "a", "action": "CREATE_POST",
                            "content": "The park is lovely"}, "agent.log", 0, 3, b"s/a")
    packed = np.arange(4, dtype="<f4").tobytes()
    full = imp.to_memory(inc, importance=0, scorer="", embedding=packed, embedder="x")
    draft = imp.window_draft(inc, packed)
    assert draft == {k: full[k] for k in draft}
    a, b = con.empty_state(), con.empty_state()
    window = con.Window(Settings())
    window.candidates(a, full)
    window.candidates(b, draft)
    assert a == b and len(a["window"]) == 1
    assert imp.window_draft(inc, None)["embedding_f32"] == b""


def test_similarities_with_a_zero_vector_in_the_window_or_asked():
    window = [{"v": con.quantise([0.6, 0.8, 0.0])}, {"v": con.quantise([0.0, 0.0, 0.0])}]
    same, zero = con.similarities(window, np.array([0.6, 0.8, 0.0], dtype=np.float32))
    assert same == pytest.approx(1.0, abs=1e-4) and zero == 0.0
    assert con.similarities(window, np.zeros(3, dtype=np.float32)) == [0.0, 0.0]


def test_reflection_topics_name_each_stem_by_its_most_used_word():
    memories = [{"id": "m1", "text": "Parks parks park budget"}, {"id": "m2", "text": "park budgets"},
                {"id": "m3", "text": "budget talk"}]
    # "park" and "parks" are used twice each: the tie goes to the first in order.
    assert det._topics(memories) == [("budget", [0, 1, 2]), ("park", [0, 1])]
    memories[1]["text"] = "parks budgets"
    assert det._topics(memories) == [("budget", [0, 1, 2]), ("parks", [0, 1])]


def test_the_memory_answer_names_exactly_the_pairs_contradiction_judges_so(sim):
    sample = texts(sim) + ["I love the new formula, wonderful taste", "The new formula is awful, terrible taste",
                           "Terrible decision on the formula", "Great decision on the formula"]
    for b in sample:
        earlier = [a for a in sample if a != b][:3]
        got = det.memory("", [{"content": b, "kind": "post", "earlier": earlier}])["statements"][0]["contradicts"]
        pairs = [(j, det.contradiction(a, b)) for j, a in enumerate(earlier, 1)]
        assert got == [{"earlier": j, "reason": v["reason"]} for j, v in pairs if v["contradicts"]]
    for a in sample:
        for b in sample:
            assert det._contradicts(a, b) == det.contradiction(a, b)["contradicts"]
