"""Verdict decision functions, the batch path and scoring, without services."""

import asyncio
import math
from pathlib import Path

import pytest

from connectors import synthetic
from eval.scoring import load_truth, score
from processors import batch
from streams.runtime import Incoming
from streams.llm import DeterministicLlm
from processors.opinion import ALL_FEATURES, AgentStance, direction_of
from processors.stance_model import LexiconModel, lexicon_valence as valence
from streams.settings import Settings, VerdictSettings
from tests.paths import ROOT

CASES = ROOT / "eval" / "cases"
Q = "Will public opinion on the carbon tax be positive or negative?"


def test_valence_reads_stance_not_only_mood():
    assert valence("I support the carbon tax, it will help.", Q) > 0.5
    assert valence("I oppose the carbon tax.", Q) < -0.3  # no charged word, still a stance
    assert valence("The carbon tax is a disaster for families!", Q) < -0.5
    on = valence("The carbon tax is wonderful", Q)
    off = valence("The weather is wonderful", Q)
    assert 0 < off < on  # off-topic mood counts at half strength
    assert -1 <= valence("great great great amazing love love support " * 20, Q) <= 1


def test_stance_inertia_needs_ceil_10_conviction_opposing_posts():
    st = AgentStance(stance=1)
    assert st.apply(-0.5, 0.25, inertia=True) is True   # 1 of 3: still holds +, post is against it
    assert st.apply(-0.5, 0.25, inertia=True) is True   # 2 of 3
    assert st.apply(-0.5, 0.25, inertia=True) is False  # 3 of 3: flips
    assert (st.stance, st.flips) == (-1, 1)
    assert st.apply(0.1, 0.25, inertia=True) is False and st.stance == -1  # |v| < 0.2 changes nothing
    quick = AgentStance(stance=1)
    quick.apply(-0.5, 0.9, inertia=False)
    assert quick.stance == -1  # conviction off: the first opposing post flips


def settings_with(**verdict) -> Settings:
    return Settings(verdict=VerdictSettings(**verdict))


def post(mid, agent, rnd, text, importance=5, ts=None):
    return {"event_id": f"s-{mid}", "memory_id": mid, "sim_id": "s", "round": rnd, "ts": ts or rnd * 1000 + 1,
            "agent_id": agent, "kind": "post", "public": True, "action": "CREATE_POST", "platform": "",
            "content": text, "importance": importance, "importance_fallback": False, "scorer": "t",
            "embedding": [], "embedder": ""}


def persona(agent, credibility, conviction=0.1, initial=0.0):
    return {"event_id": f"p-{agent}", "sim_id": "s", "agent_id": agent, "round": 0, "ts": 0,
            "credibility": credibility, "conviction": conviction, "initial_stance": initial}


def staged(out):
    """What the agent pass would give each author's stance step: its persona,
    then per round its posts, reflections and conflicts."""
    inputs = {a: [Incoming("Persona", p, "log", 0, 0, None)] for a, p in sorted(out.personas.items())}
    rows = [((m["round"], 0, m["ts"]), Incoming("ScoredMemory", m, "log", 0, 0, None)) for m in out.memories]
    rows += [((m["round"], 1, m["ts"]), Incoming("ScoredMemory", m, "log", 0, 0, None)) for m in out.reflection_memories]
    rows += [((c["round"], 2, c["ts"]), Incoming("Conflict", c, "log", 0, 0, None)) for c in out.conflicts]
    for _, inc in sorted(rows, key=lambda r: r[0]):
        inputs.setdefault(inc.record["agent_id"], []).append(inc)
    out.stance_inputs = inputs
    return out


def run_verdicts(out, settings=None, question=Q, **kw):
    if not out.stance_inputs:
        staged(out)
    settings = settings or Settings()
    rt = batch.BatchRuntime(settings, DeterministicLlm(settings))
    return asyncio.run(batch.verdicts(rt, out, sim_id="s", question=question, **kw))


PRO, CON = "I support the carbon tax, it will help.", "I oppose the carbon tax."


def test_verdict_formulas():
    out = batch.SimOutputs(personas={"a": persona("a", 0.8), "b": persona("b", 0.2)}, round_ends={0: 999})
    out.memories = [post("p1", "a", 0, PRO), post("p2", "b", 0, CON)]
    (v,) = run_verdicts(out, settings_with(min_signal_posts=1))
    va, vb = valence(PRO, Q), valence(CON, Q)
    wa, wb = 0.8 * 1.0, 0.2 * 1.0
    ratio = (va * wa + vb * wb) / (wa + wb)
    assert v["support_ratio"] == pytest.approx(ratio, abs=1e-6) and v["direction"] == "positive"
    # MiroFish's formula, times coverage (1 here) and the lexicon's measured reliability
    assert v["stance_reliability"] == LexiconModel.reliability
    assert v["confidence"] == pytest.approx(min(1, abs(ratio) * (1 - math.exp(-2 / 20))) * LexiconModel.reliability,
                                            abs=1e-6)
    assert (v["post_count"], v["author_count"], v["stance_positive"], v["stance_negative"]) == (2, 2, 1, 1)
    assert (v["posts_read"], v["posts_no_signal"], v["posts_unreadable"], v["coverage"]) == (2, 0, 0, 1.0)
    assert v["backend"] == "lexicon-v2" and v["question"] == Q
    assert [direction_of(x) for x in (0.16, 0.15, -0.15, -0.16)] == ["positive", "neutral", "neutral", "negative"]
    # two posts are too few to tell with the default minimum of 5 posts with a signal
    (v,) = run_verdicts(out)
    assert v["direction"] == "insufficient" and v["confidence"] == 0 and v["support_ratio"] == pytest.approx(ratio, abs=1e-6)


def test_a_contradicted_author_no_longer_counts_and_reflections_are_not_posts():
    out = batch.SimOutputs(personas={"a": persona("a", 0.8), "b": persona("b", 0.2)}, round_ends={0: 999, 1: 1999})
    out.memories = [post("p1", "a", 0, PRO), post("p2", "b", 0, CON)]
    out.conflicts = [{"event_id": "c1", "sim_id": "s", "round": 1, "ts": 1500, "agent_id": "a",
                      "new_memory_id": "r1", "old_memory_id": "p1"}]
    # a's only post is superseded in round 1; c writes only a reflection (a model's: it counts)
    out.reflection_memories = [{**post("r1", "c", 1, "I believe the carbon tax is a good idea."), "kind": "reflection",
                                "public": False, "scorer": "reflection:vllm:some-model"}]
    r0, r1 = run_verdicts(out, settings_with(min_signal_posts=1))
    assert (r0["post_count"], r0["author_count"]) == (2, 2)
    assert (r1["post_count"], r1["author_count"], r1["reflection_count"]) == (1, 1, 1)
    # the deterministic backend's template reflections never count
    out.reflection_memories[0]["scorer"] = "reflection:deterministic"
    r1 = run_verdicts(staged(out), settings_with(min_signal_posts=1))[1]
    assert (r1["reflection_count"], r1["reflections_excluded"]) == (0, 1)
    r1 = run_verdicts(out, settings_with(min_signal_posts=1, reflections="all"))[1]
    assert (r1["reflection_count"], r1["reflections_excluded"]) == (1, 0)


def test_text_the_model_cannot_read_makes_the_verdict_say_so():
    zh = ["碳税会让生活成本上升，我坚决反对。", "我支持碳税，这对环境有好处！", "政府应该尽快实施碳税政策。"]
    out = batch.SimOutputs(personas={}, round_ends={0: 999})
    out.memories = [post(f"z{i}", f"a{i}", 0, t) for i, t in enumerate(zh * 4)]
    (v,) = run_verdicts(out)
    assert v["direction"] == "insufficient" and v["confidence"] == 0.0
    assert (v["post_count"], v["posts_unreadable"], v["coverage"]) == (0, 12, 0.0)
    reading = LexiconModel().read(zh[0], Q)
    assert reading.status == "unreadable" and reading.language == "zh"
    assert LexiconModel().read("😀😀", Q).status == "unreadable"
    assert LexiconModel().read("The weather", Q).status == "no-signal"


def test_scoring_is_mirofish_formula():
    s = score({"direction": "neutral", "magnitude": 0.0, "confidence": 0.0}, {"direction": "positive", "magnitude": 0.3})
    assert s == {"direction_match": 0.0, "magnitude_error": 0.3, "calibration": 1.0, "composite": pytest.approx(0.41)}
    s = score({"direction": "negative", "magnitude": 0.5, "confidence": 0.7}, {"direction": "negative", "magnitude": 0.45})
    assert s["composite"] == pytest.approx(0.5 + 0.3 * 0.95 + 0.2 * 0.7)


def test_truth_files_are_validated(tmp_path):
    (tmp_path / "truth.json").write_text('{"direction": "up", "magnitude": 0.5, "confidence": 0.5}')
    with pytest.raises(ValueError, match="direction must be one of"):
        load_truth(tmp_path)
    (tmp_path / "truth.json").write_text('{"direction": "positive", "magnitude": 2, "confidence": 0.5}')
    with pytest.raises(ValueError, match="magnitude must be a number in"):
        load_truth(tmp_path)


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if p.is_dir()))
def test_shipped_cases_are_complete(case):
    truth = load_truth(CASES / case)
    assert len(truth["notes"]) > 40  # each truth carries its rationale or source
    assert (CASES / case / "seed.md").read_text().strip() and (CASES / case / "question.md").read_text().strip()


def derive(case_dir, seed=3):
    run = synthetic.generate(case_dir, sim_id="s", seed=seed, agents=25, rounds=7)
    events = [(e.type_name, e.record) for e in run.events]
    settings = Settings()
    rt = batch.BatchRuntime(settings, DeterministicLlm(settings))
    return events, asyncio.run(batch.derive(rt, events))


def test_the_pass_depends_on_each_agents_order_only():
    case = CASES / "new_coke_1985"
    events, out = derive(case)
    # Agents interleaved otherwise (each agent's own events still in order),
    # duplicates, and other chunk boundaries: the same outputs.
    rank = {}
    for _, r in events:
        rank.setdefault(r.get("agent_id", ""), len(rank))
    regrouped = sorted(events, key=lambda e: -rank[e[1].get("agent_id", "")]) + events[:10]
    settings = Settings()
    out2 = asyncio.run(batch.derive(batch.BatchRuntime(settings, DeterministicLlm(settings)), regrouped, chunk=37))
    def rows(records):  # where an event was read differs with the order given; nothing else may
        return sorted(repr({**r, "source_offset": None}) for r in records)

    for field in ("memories", "reflections", "reflection_memories", "conflicts"):
        assert rows(getattr(out, field)) == rows(getattr(out2, field)), field
    q = (case / "question.md").read_text()
    a = run_verdicts(out, question=q)
    b = run_verdicts(out2, question=q)
    assert a == b and [v["round"] for v in a] == list(range(7))
    assert out.reflections and out.personas


def test_an_agents_own_order_matters():
    """The log's order is the agent's history: the pass does not re-sort it."""
    events, out = derive(CASES / "new_coke_1985")
    agent = next(r["agent_id"] for t, r in events if t == "Post")
    mine = [e for e in events if e[1].get("agent_id") == agent and e[0] in ("Post", "Observation")]
    others = [e for e in events if e not in mine]
    settings = Settings()
    out2 = asyncio.run(batch.derive(batch.BatchRuntime(settings, DeterministicLlm(settings)), others + mine[::-1]))
    first = [m["memory_id"] for m in out.memories if m["agent_id"] == agent]
    assert [m["memory_id"] for m in out2.memories if m["agent_id"] == agent] == first[::-1]


def test_each_feature_can_move_the_verdict():
    case = CASES / "ireland_smoking_ban_2004"
    _, out = derive(case, seed=5)
    q = (case / "question.md").read_text()
    every = settings_with(reflections="all")  # template reflections too, so the reflection feature has something
    base = run_verdicts(out, every, question=q)[-1]["support_ratio"]
    moved = {f: run_verdicts(out, every, question=q, features=frozenset(ALL_FEATURES) - {f})[-1]["support_ratio"] != base
             for f in ALL_FEATURES}
    assert sum(moved.values()) >= 4, moved
