"""Stance models and their benchmark, without services."""

from pathlib import Path

import pytest

from eval import stance_bench
from processors import stance_model
from processors.stance_model import (NO_SIGNAL, READ, UNREADABLE, LexiconModel, LinearModel, english_readable,
                                     make_model)
from streams.settings import Settings
from tests.paths import SHARED

TWEETEVAL = SHARED / "tweeteval-stance"


def test_language_gate():
    assert english_readable("The carbon tax will hurt families") == (True, "en")
    ok, lang = english_readable("碳税会让生活成本上升，我坚决反对。")
    assert not ok and lang == "zh"
    ok, lang = english_readable("Налог на углерод разорит семьи, я против.")
    assert not ok and lang == "ru"
    ok, lang = english_readable("La taxe carbone va ruiner les familles, je suis contre cette mesure.")
    assert not ok and lang == "fr"
    assert english_readable("🙂 12345") == (False, "")
    assert english_readable("lol ok")[0]  # too short to say otherwise: read as English


def test_macro_f1_is_the_benchmark_metric():
    # favor: tp 1, fp 1, fn 1 -> F1 0.5; against: tp 2, fp 0, fn 0 -> 1.0
    pairs = [(2, 2), (2, 0), (0, 2), (1, 1), (1, 1), (0, 0)]
    assert stance_bench.macro_f1(pairs) == {"favor": 50.0, "against": 100.0, "macro": 75.0}


def write_split(root: Path, split: str, rows: dict[str, list[tuple[str, int]]]) -> None:
    for target, items in rows.items():
        (root / target).mkdir(parents=True, exist_ok=True)
        (root / target / f"{split}_text.txt").write_text("\n".join(t for t, _ in items) + "\n")
        (root / target / f"{split}_labels.txt").write_text("\n".join(str(lab) for _, lab in items) + "\n")


def test_bad_label_files_name_file_and_line(tmp_path):
    write_split(tmp_path, "val", {"t": [("a", 1), ("b", 2)]})
    (tmp_path / "t" / "val_labels.txt").write_text("1\nfavor\n")
    with pytest.raises(ValueError, match=r"val_labels.txt:2: label must be 0"):
        stance_bench.load(tmp_path, "val")
    (tmp_path / "t" / "val_labels.txt").write_text("1\n")
    with pytest.raises(ValueError, match="2 posts but 1 labels"):
        stance_bench.load(tmp_path, "val")
    with pytest.raises(FileNotFoundError, match="no target folder holds test_text.txt"):
        stance_bench.load(tmp_path, "test")


def test_benchmark_scores_unreadable_posts_as_none_and_says_so(tmp_path):
    write_split(tmp_path, "val", {"tax": [("I support the carbon tax, great idea", 2),
                                          ("I oppose the carbon tax, a disaster", 1), ("支持这个税", 2),
                                          ("Lunch was okay", 0)]})  # off-topic mood: no signal
    result = stance_bench.run(Settings(), tmp_path, split="val", questions={"tax": "the carbon tax"})
    (row,) = result["targets"]
    assert row["unreadable"] == 1 and row["verdict"]["posts_unreadable"] == 1 and row["verdict"]["coverage"] == 0.75
    assert row["f1"]["against"] == 100.0 and row["f1"]["favor"] == pytest.approx(66.67)
    assert row["verdict"]["direction"] == "insufficient"  # 2 posts with a signal: too few to tell
    assert row["balance"] == 0.25 and result["model"] == "lexicon-v2"
    assert "tax" in stance_bench.table(result)


def test_linear_model_trains_saves_loads_and_reads(tmp_path, monkeypatch):
    # 2**12 hash buckets instead of 2**18: the same code, 64x fewer weights
    # for the six fits (the suite has a time budget; the width is not the point)
    monkeypatch.setattr(stance_model, "N_FEATURES", 2 ** 12)
    pro = ["I love it and support it", "great idea, yes", "fully in favour, wonderful", "support this, good"] * 6
    con = ["I hate it and oppose it", "terrible idea, no", "against this, awful", "oppose it, bad"] * 6
    none = ["what time is lunch", "the weather today", "my cat sleeps", "reading a book"] * 6
    model = LinearModel.train(pro + con + none, [2] * 24 + [1] * 24 + [0] * 24, meta={"note": "test"})
    assert 0 < model.reliability <= 1 and model.meta["trained_on_posts"] == 72
    path = tmp_path / "m.json"
    model.save(path)
    loaded = make_model(f"linear:{path}")
    assert loaded.name == model.name and loaded.reliability == model.reliability
    assert loaded.read("I support it, great", "q").status == READ and loaded.read("I support it", "q").valence > 0
    assert loaded.read("I oppose it, terrible", "q").valence < 0
    assert loaded.read("my cat reads", "q").status == NO_SIGNAL
    assert loaded.read("我反对", "q").status == UNREADABLE
    path.write_text("{}")
    with pytest.raises(ValueError, match="not a stance model file"):
        make_model(f"linear:{path}")
    with pytest.raises(ValueError, match="unknown stance model"):
        make_model("telepathy")


def test_lexicon_reliability_is_what_the_benchmark_measures():
    # The constant that caps the lexicon's verdict confidence is its measured
    # pooled macro-F1 on TweetEval's validation split (five targets).
    assert TWEETEVAL.is_dir(), f"TweetEval stance data missing under {TWEETEVAL}"
    questions = {"abortion": "legalization of abortion", "climate": "climate change is a real concern",
                 "feminist": "feminist movement", "hillary": "Hillary Clinton"}
    result = stance_bench.run(Settings(), TWEETEVAL, split="val", questions=questions)
    assert round(result["pooled"]["f1"]["macro"] / 100, 2) == LexiconModel.reliability
    assert result["pooled"]["confidently_wrong"] == []
