"""The soak's schedule and its judgement of a process's memory, without services."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from bench import soak_plan
from bench.soak_plan import KINDS, flat, interval_for, schedule, trends


def test_thirty_minutes_hold_every_kind_twice_and_end_with_recovery():
    every = interval_for(30 * 60)
    plan = schedule(30 * 60, every)
    assert every == 150
    assert Counter(kind for _, kind in plan) == {k: 2 for k in KINDS}
    assert plan[0] == (75.0, KINDS[0])
    assert all(b - a == every for (a, _), (b, _) in zip(plan, plan[1:]))
    assert plan[-1][0] <= 30 * 60 - every / 2  # the last interval is the pipeline's to recover in


def test_worker_faults_are_never_back_to_back():
    kinds = [k for _, k in schedule(60 * 60, 60)]
    worker = {"worker_sigkill", "worker_sigterm"}
    assert not any(a in worker and b in worker for a, b in zip(kinds, kinds[1:]))


def test_a_short_run_still_rotates_and_refuses_nonsense():
    assert [k for _, k in schedule(150, 25)] == list(KINDS)
    with pytest.raises(ValueError):
        schedule(100, 0)


def samples(pid: int, start: float, minutes: float, mb, every: float = 2.0) -> list[dict]:
    n = int(minutes * 60 / every)
    return [{"t": start + i * every, "pid": pid, "rss_mb": mb(i * every / 60)} for i in range(n)]


def test_a_flat_life_a_leaking_one_and_the_warmup_left_out():
    steady = samples(1, 0, 8, lambda m: 300.0 + (80.0 if m < 0.5 else 0.0) + (m * 7 % 3))  # a load spike at start
    leaking = samples(2, 600, 8, lambda m: 300.0 + 6.0 * m)
    short = samples(3, 1200, 1.5, lambda m: 300.0)
    down = [{"t": 2000, "pid": None, "rss_mb": None}]
    got = {t.pid: t for t in trends(steady + leaking + short + down)}
    assert set(got) == {1, 2}  # a life under two minutes after warm-up is not judged
    assert flat(got[1]) and abs(got[1].slope_mb_per_min) < 1.0
    assert not flat(got[2]) and got[2].slope_mb_per_min == pytest.approx(6.0, rel=0.01)
    assert got[2].growth_pct > 10


def test_the_soak_command_refuses_nonsense_with_a_usage_error(capsys):
    from bench.soak import main

    for argv in (["--minutes", "0"], ["--every", "-5"], ["--rate", "fast"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
    assert "must be positive" in capsys.readouterr().err


def _lives(levels: list[float], *, minutes_each: float = 5.0, slope: float = 0.0) -> list[dict]:
    """Samples every 2 s over consecutive lives, each at its own level."""
    out, t = [], 0.0
    for pid, level in enumerate(levels, start=1):
        start = t
        while t < start + minutes_each * 60:
            out.append({"t": t, "pid": pid, "rss_mb": level + slope * (t - start) / 60})
            t += 2.0
        out.append({"t": t, "pid": None, "rss_mb": None})  # down between lives
        t += 2.0
    return out


def test_the_run_trend_sees_lives_that_each_start_higher():
    # flat within every life, as a per-life judgement sees it, yet 300 MB more at each restart
    samples = _lives([400, 700, 1000, 1300])
    assert all(soak_plan.flat(t) for t in soak_plan.trends(samples))
    run = soak_plan.run_trend(samples)
    assert run.settled_mb == (400, 700, 1000, 1300) and run.slope_mb_per_min > 50
    assert not soak_plan.run_flat(run)


def test_the_run_trend_is_flat_when_every_life_settles_at_one_level():
    run = soak_plan.run_trend(_lives([600, 610, 590, 605]))
    assert abs(run.slope_mb_per_min) < 1 and soak_plan.run_flat(run)
    assert soak_plan.run_trend([{"t": 0, "pid": 1, "rss_mb": 5.0}]) is None  # too little to judge


def test_reanalyse_refuses_what_is_not_a_results_file(tmp_path, capsys):
    from bench.soak import main

    empty, other = tmp_path / "empty.json", tmp_path / "other.json"
    empty.write_text("not json")
    other.write_text('{"ok": true}')  # JSON, but no samples
    for path in (tmp_path / "missing.json", empty, other):
        with pytest.raises(SystemExit) as exit_:
            main(["--reanalyse", str(path)])
        assert exit_.value.code == 2
        assert f"--reanalyse {path}: not a soak results file" in capsys.readouterr().err
    results = tmp_path / "soak.json"
    samples = [dict(x, lag=None, cpu_pct=None) for x in _lives([500, 505])]
    results.write_text(json.dumps({"samples": samples, "faults": [], "config": {"minutes": 1, "rate": 1},
                                   "verifier": {"lost": 0, "duplicated": 0, "degraded": 0}}))
    assert main(["--reanalyse", str(results)]) == 0
    assert json.loads(results.read_text())["rss_run"]["flat"] is True and results.with_suffix(".png").exists()
