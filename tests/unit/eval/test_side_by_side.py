"""``murmur eval compare``'s decisions, on rows as eval.compare.snapshot
takes them: which rounds, memories, reflections and conflicts differ, and
how LLM usage is counted (and said to be missing)."""

from __future__ import annotations

import json

from eval.side_by_side import compare_runs, keyed_changes, llm_usage, render, verdict_rounds


def verdict(rnd, ratio=0.25, posts=10, authors=8, pos=5, neg=3, flips=0):
    return (rnd, ratio, posts, authors, pos, neg, flips)


def run(name, *, memories=(), reflections=(), conflicts=(), verdicts=(), llm=None):
    return {"name": name, "llm": llm, "snapshot": {"memories": sorted(memories), "reflections": sorted(reflections),
                                                   "conflicts": sorted(conflicts), "verdicts": list(verdicts)}}


MEMS = [("m1", "post", 7, None, None), ("m2", "post", 4, None, None), ("m3", "observation", 5, None, None)]
REFLS = [("r1", ("m1", "m2"), "I think the plan is good")]
CONFS = [("c1", "m1", "m3")]
VERDICTS = [verdict(0), verdict(1, 0.5), verdict(2, -0.1)]


def call(event_id, role="fast", prompt=100, completion=20, status="ok", backend="deterministic"):
    return {"event_id": event_id, "role": role, "prompt_tokens": prompt, "completion_tokens": completion,
            "status": status, "backend": backend}


def test_identical_runs_are_equal_and_nothing_is_listed_as_differing():
    a = run("live", memories=MEMS, reflections=REFLS, conflicts=CONFS, verdicts=VERDICTS)
    b = run("rp1", memories=MEMS, reflections=REFLS, conflicts=CONFS, verdicts=VERDICTS)
    report = compare_runs("s1", a, b)
    assert report["equal"] and all(report["parts_equal"].values())
    assert report["verdicts"]["rounds_differing"] == [] and len(report["verdicts"]["rounds"]) == 3
    for part in ("memories", "reflections", "conflicts"):
        d = report[part]
        assert d["only_a"] == d["only_b"] == d["differing"] == 0, part
    assert report["memories"]["a"] == report["memories"]["b"] == 3
    assert "result: equal" in render(report)


def test_a_memory_that_stays_valid_in_one_run_is_a_validity_and_supersession_difference():
    superseded = [("m1", "post", 7, 1_700_000_000_000, "m3"), *MEMS[1:]]
    report = compare_runs("s1", run("live", memories=superseded, conflicts=CONFS, verdicts=VERDICTS),
                          run("rp1", memories=MEMS, verdicts=VERDICTS))
    m = report["memories"]
    assert m["differing"] == 1 and m["only_a"] == m["only_b"] == 0
    assert m["changed"]["validity"] == {"count": 1, "examples": [{"id": "m1", "a": 1_700_000_000_000, "b": None}]}
    assert m["changed"]["supersession"]["examples"] == [{"id": "m1", "a": "m3", "b": None}]
    assert m["changed"]["importance"]["count"] == 0
    c = report["conflicts"]
    assert (c["only_a"], c["only_b"]) == (1, 0)
    assert c["examples_only_a"] == [{"id": "c1", "old_memory_id": "m1", "new_memory_id": "m3"}]
    assert not report["equal"] and report["parts_equal"] == {"memories": False, "reflections": True,
                                                             "conflicts": False, "verdicts": True}
    text = render(report)
    assert "result: different (memories, conflicts)" in text
    assert "only in live: c1 old_memory_id m1, new_memory_id m3" in text and "validity     m1: live 2023-11-14 22:13:20.000  |  rp1 None" in text


def test_importance_differences_are_counted_per_memory_with_examples_capped():
    a = [(f"m{i}", "post", 5, None, None) for i in range(10)]
    b = [(f"m{i}", "post", 5 + (i % 2), None, None) for i in range(10)]
    d = keyed_changes(a, b, {"importance": 2}, examples=2)
    assert d["differing"] == 5 and d["changed"]["importance"]["count"] == 5
    assert d["changed"]["importance"]["examples"] == [{"id": "m1", "a": 5, "b": 6}, {"id": "m3", "a": 5, "b": 6}]


def test_reflections_only_in_one_run_and_with_other_sources():
    a = REFLS + [("r2", ("m3",), "x" * 300)]
    b = [("r1", ("m1",), "I think the plan is good"), ("r3", ("m2",), "new")]
    report = compare_runs("s1", run("live", reflections=a), run("rp1", reflections=b))
    r = report["reflections"]
    assert (r["only_a"], r["only_b"], r["differing"]) == (1, 1, 1)
    assert r["changed"]["sources"]["examples"] == [{"id": "r1", "a": ("m1", "m2"), "b": ("m1",)}]
    assert r["changed"]["content"]["count"] == 0
    assert r["examples_only_a"] == [{"id": "r2", "sources": 1, "content": "x" * 100}]


def test_verdict_rounds_pair_by_round_and_mark_a_round_missing_on_one_side():
    rows = verdict_rounds([verdict(0), verdict(1, 0.5)], [verdict(0), verdict(1, 0.4), verdict(2)])
    assert [(r["round"], r["differs"]) for r in rows] == [(0, False), (1, True), (2, True)]
    assert rows[1]["a"]["support_ratio"] == 0.5 and rows[1]["b"]["support_ratio"] == 0.4
    assert rows[2]["a"] is None and rows[2]["b"]["post_count"] == 10


def test_long_verdict_tables_show_the_differing_rounds_unless_asked_for_all():
    a = [verdict(i) for i in range(100)]
    b = [verdict(i, 0.9 if i == 57 else 0.25) for i in range(100)]
    report = compare_runs("s1", run("live", verdicts=a), run("rp1", verdicts=b))
    assert report["verdicts"]["rounds_differing"] == [57]
    short = render(report).splitlines()
    marked = [line for line in short if line.startswith("*")]
    assert len(marked) == 1 and marked[0].split("|")[0].split() == ["*", "57"]
    assert "(99 equal rounds not shown; --all-rounds shows them)" in [line.strip() for line in short]
    assert sum(1 for line in render(report, all_rounds=True).splitlines() if "|" in line) == 2 + 100


def test_llm_usage_sums_calls_and_tokens_per_role_once_per_event_id():
    records = [call("e1"), call("e1"), call("e2", prompt=50, completion=5),
               call("e3", role="embed", prompt=30, completion=0), call("e4", status="failed", prompt=0, completion=0)]
    u = llm_usage(records)
    assert (u["calls"], u["failed"], u["prompt_tokens"], u["completion_tokens"]) == (4, 1, 180, 25)
    assert u["by_role"] == {"embed": {"calls": 1, "prompt_tokens": 30, "completion_tokens": 0},
                            "fast": {"calls": 3, "prompt_tokens": 150, "completion_tokens": 25}}
    assert u["backends"] == ["deterministic"]


def test_a_run_without_llm_records_is_not_recorded_rather_than_zero():
    assert llm_usage([]) is None
    report = compare_runs("s1", run("live", verdicts=VERDICTS, llm=llm_usage([call("e1")])),
                          run("rp1", verdicts=VERDICTS, llm=None))
    text = render(report)
    assert "LLM calls of live: 1 calls (fast 1); 100 prompt + 20 completion tokens" in text
    assert "LLM calls of rp1: not recorded" in text
    # LLM usage is reported, not judged: equal rows are equal runs.
    assert report["equal"]
    assert json.loads(json.dumps(report))["llm"]["b"] is None
