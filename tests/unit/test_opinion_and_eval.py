"""Verdict decision functions, the batch path and scoring, without services."""

import asyncio
import math
from pathlib import Path

import pytest

from connectors import synthetic
from eval.scoring import load_truth, score
from processors import batch
from processors.llm import DeterministicLlm
from processors.opinion import ALL_FEATURES, AgentStance, Persona, VerdictBook, direction_of, valence
from streams.settings import Settings

CASES = Path(__file__).resolve().parents[2] / "eval" / "cases"
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


def test_verdict_formulas():
    book = VerdictBook("s", Q)
    book.add_persona("a", Persona(credibility=0.8, conviction=0.1))
    book.add_persona("b", Persona(credibility=0.2, conviction=0.1))
    book.add_post("p1", "a", 0, 0.5, importance=5)
    book.add_post("p2", "b", 0, -0.5, importance=5)
    v = book.verdict(0, 123)
    wa, wb = 0.8 * 1.0, 0.2 * 1.0
    ratio = (0.5 * wa - 0.5 * wb) / (wa + wb)
    assert v["support_ratio"] == pytest.approx(ratio)
    assert v["direction"] == "positive" and v["magnitude"] == pytest.approx(abs(ratio))
    assert v["confidence"] == pytest.approx(min(1, abs(ratio) * (1 - math.exp(-2 / 20))), abs=1e-6)
    assert (v["post_count"], v["author_count"], v["stance_positive"], v["stance_negative"]) == (2, 2, 1, 1)
    book.add_conflict("p1")  # a's post is superseded: only b's counts now
    assert book.verdict(0, 123)["support_ratio"] == pytest.approx(-0.5)
    assert [direction_of(x) for x in (0.16, 0.15, -0.15, -0.16)] == ["positive", "neutral", "neutral", "negative"]


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


def test_batch_path_is_deterministic_whatever_the_arrival_order():
    case = CASES / "new_coke_1985"
    events, out = derive(case)
    shuffled = list(reversed(events)) + events[:10]  # other order, and duplicates
    settings = Settings()
    out2 = asyncio.run(batch.derive(batch.BatchRuntime(settings, DeterministicLlm(settings)), shuffled))
    q = (case / "question.md").read_text()
    a = batch.verdicts(out, sim_id="s", question=q)
    b = batch.verdicts(out2, sim_id="s", question=q)
    assert a == b and [v["round"] for v in a] == list(range(7))
    assert out.reflections and out.personas


def test_each_feature_can_move_the_verdict():
    case = CASES / "ireland_smoking_ban_2004"
    _, out = derive(case, seed=5)
    q = (case / "question.md").read_text()
    base = batch.verdicts(out, sim_id="s", question=q)[-1]["support_ratio"]
    moved = {f: batch.verdicts(out, sim_id="s", question=q, features=frozenset(ALL_FEATURES) - {f})[-1]["support_ratio"] != base
             for f in ALL_FEATURES}
    assert sum(moved.values()) >= 4, moved
