"""B2's figures with and without MiroFish's runner beside it. Murmur's side
(workers, Kafka, Cassandra) is replaced by fixed runs, and a small program
plays the runner's command line, so what is checked is how B2 turns the
two sides into ratios, and that it says so when the runner is not there."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench import b2_mirofish as b2
from bench import mirofish_runner as mr
from bench.common import Ctx
from streams.settings import Settings
from tests.unit.bench.test_mirofish_runner import ECHO, fake_runner


def murmur_run(ctx, agents, rounds, case=b2.CASE, workers=1):
    # Fixed figures for Murmur's side: 100 posts/s drained at 20 rounds, 80 at
    # 40; 150 with two workers.
    drained = {20: 100.0, 40: 80.0}[rounds] * (1.5 if workers == 2 else 1)
    return {"sim": f"s{rounds}", "agents": agents, "rounds": rounds, "posts": agents * rounds,
            "queryable_posts_per_s": drained * 2, "drained_posts_per_s": drained,
            "deciles": [{"decile": 0, "posts_per_s": 10.0}, {"decile": 9, "posts_per_s": 50.0}]}


@pytest.fixture
def ctx(tmp_path, monkeypatch):
    monkeypatch.setattr(b2, "one_run", murmur_run)
    logged: list[str] = []
    c = Ctx(settings=Settings(cache_dir=tmp_path / "cache"), quick=True, repeats=1, log=logged.append)
    c.logged = logged
    return c


def test_without_the_runner_murmurs_figures_stand_alone_and_the_log_says_so(ctx, tmp_path, monkeypatch):
    monkeypatch.setenv(mr.ENV_VAR, str(tmp_path / "nowhere"))
    out = b2.run(ctx)
    assert not [k for k in out["figures"] if "mirofish" in k]
    assert "ratio" not in out["figures"]["r20_drained_posts_per_s"]
    assert out["figures"]["drained_rate_40_vs_20_rounds"]["median"] == 0.8
    assert "ratio" not in out["figures"]["drained_rate_40_vs_20_rounds"]
    assert out["settings"]["mirofish"].startswith("skipped")
    assert any("not found at" in line and "nowhere" in line and "skipped" in line for line in ctx.logged)


def test_with_the_runner_murmurs_rates_are_ratios_to_its_measured_rate(ctx, tmp_path, monkeypatch):
    folder = fake_runner(tmp_path / "runner", ECHO)
    monkeypatch.setenv(mr.ENV_VAR, str(folder))
    monkeypatch.setattr(mr, "ensure_venv", lambda venv, log: Path(sys.executable))
    out = b2.run(ctx)
    f = out["figures"]
    for rounds in (20, 40):
        mf = f[f"r{rounds}_mirofish_posts_per_s"]
        assert len(mf["values"]) == 3  # at least 3 runs of the runner per size
        assert mf["posts"] == 200 * rounds  # the fake posts once per agent and round
        drained = f[f"r{rounds}_drained_posts_per_s"]
        assert drained["reference_value"] == mf["median"]
        assert drained["ratio"] == round(drained["median"] / mf["median"], 3)
        assert "same run" in drained["reference"] and "NOT measured" not in drained["reference"]
    two = f["r20_drained_posts_per_s_2_workers"]
    assert two["median"] == 150.0 and two["reference_value"] == f["r20_mirofish_posts_per_s"]["median"]
    growth = f["mirofish_rate_40_vs_20_rounds"]["median"]
    assert growth == pytest.approx(f["r40_mirofish_posts_per_s"]["median"] / f["r20_mirofish_posts_per_s"]["median"],
                                   abs=1e-3)
    assert f["drained_rate_40_vs_20_rounds"]["reference_value"] == pytest.approx(growth, abs=1e-3)
    assert len(out["mirofish_runs"]) == 6
    assert out["settings"]["mirofish"]["runner"] == str(folder)
