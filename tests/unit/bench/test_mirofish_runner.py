"""Running MiroFish's runner beside B2: reading its record, finding it, and
the errors when its output is unreadable. A small program in tmp_path
plays the runner's command line, so no venv or network is needed."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from bench import mirofish_runner as mr
from bench.common import BenchError


def record(agents: int = 3, round_posts=(2, 1, 3), reflections: int = 4, conflicts: int = 1) -> dict:
    # The shape of the runner's --output-json record (backend/eval/runner.py), trimmed.
    return {"case": "sample_policy_carbon_tax", "deterministic": True, "mock_llm": True,
            "run": {"config": {"num_agents": agents, "num_rounds": len(round_posts), "seed": 1234},
                    "round_posts": list(round_posts), "reflections_written": reflections,
                    "conflicts_written": conflicts, "persona_count": agents},
            "score": {"composite": 0.365}}


def test_a_record_gives_its_posts_reflections_and_conflicts():
    assert mr.parse_record(json.dumps(record()), agents=3, rounds=3) == (6, 4, 1)


@pytest.mark.parametrize("text, says", [
    ("Traceback (most recent call last):\n  boom", "not a JSON record"),
    ("", "not a JSON record"),
    ("[1, 2]", "no 'run' object"),
    (json.dumps({"run": {"round_posts": "2,1,3"}}), "not a list of post counts"),
    (json.dumps({"run": {"round_posts": [2, -1, 3]}}), "not a list of post counts"),
])
def test_an_unreadable_record_is_a_bench_error_naming_what_failed(text, says):
    with pytest.raises(BenchError, match=says) as e:
        mr.parse_record(text, agents=3, rounds=3)
    assert str(e.value).startswith("MiroFish runner:")


def test_a_record_of_another_size_is_refused():
    with pytest.raises(BenchError, match="2 rounds, 3 were asked"):
        mr.parse_record(json.dumps(record(round_posts=(1, 1))), agents=3, rounds=3)
    with pytest.raises(BenchError, match="num_agents is 5, 3 were asked"):
        mr.parse_record(json.dumps(record(agents=5)), agents=3, rounds=3)


def test_a_record_without_posts_or_counts_is_refused():
    with pytest.raises(BenchError, match="no posts"):
        mr.parse_record(json.dumps(record(round_posts=(0, 0, 0))), agents=3, rounds=3)
    bad = record()
    del bad["run"]["conflicts_written"]
    with pytest.raises(BenchError, match="conflicts_written is not a count"):
        mr.parse_record(json.dumps(bad), agents=3, rounds=3)


def test_the_runner_is_found_by_its_entry_point(tmp_path):
    assert mr.locate({mr.ENV_VAR: str(tmp_path)}) is None  # a folder without the runner
    (tmp_path / mr.ENTRY).parent.mkdir(parents=True)
    (tmp_path / mr.ENTRY).write_text("")
    assert mr.locate({mr.ENV_VAR: str(tmp_path)}) == tmp_path
    assert mr.configured_dir({}) == mr.DEFAULT_DIR
    assert mr.DEFAULT_DIR == mr.ROOT.parent / "shared" / "reference" / "mirofish-runner"


def test_a_size_below_one_is_refused():
    with pytest.raises(BenchError, match="must be positive"):
        mr.command(Path("python"), agents=0, rounds=20)


def fake_runner(folder: Path, body: str) -> Path:
    """A folder laid out like the runner's, whose backend.eval.runner runs ``body``."""
    pkg = folder / "backend" / "eval"
    pkg.mkdir(parents=True)
    (folder / "backend" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "runner.py").write_text(textwrap.dedent(body))
    return folder


ECHO = """
    import argparse, json, sys
    p = argparse.ArgumentParser()
    for a in ("--case", "--num-agents", "--num-rounds", "--seed"):
        p.add_argument(a)
    for a in ("--deterministic", "--mock-llm", "--output-json"):
        p.add_argument(a, action="store_true")
    a = p.parse_args()
    n, r = int(a.num_agents), int(a.num_rounds)
    print(json.dumps({"run": {"config": {"num_agents": n}, "round_posts": [n] * r,
                              "reflections_written": 7, "conflicts_written": 2}}))
    sys.exit(1)  # its CI guard: composite below 0.5
"""


def test_a_run_exiting_1_with_its_record_is_timed_and_read(tmp_path):
    folder = fake_runner(tmp_path / "runner", ECHO)
    m = mr.run_once(folder, Path(sys.executable), agents=4, rounds=5, cache=tmp_path / "cache")
    assert (m.posts, m.reflections, m.conflicts, m.exit_code) == (20, 7, 2, 1)
    assert m.wall_s > 0
    assert m.posts_per_s == pytest.approx(20 / m.wall_s)
    assert m.as_dict()["posts"] == 20
    assert not list(folder.rglob("__pycache__"))  # bytecode went to the cache, not its folder


def test_a_crash_is_reported_with_its_stderr(tmp_path):
    folder = fake_runner(tmp_path / "runner", "raise RuntimeError('no numpy here')\n")
    with pytest.raises(BenchError, match="not a JSON record") as e:
        mr.run_once(folder, Path(sys.executable), agents=4, rounds=5, cache=tmp_path / "cache")
    assert "no numpy here" in str(e.value)
    assert "exit code 1" in str(e.value)


def test_an_unexpected_exit_code_is_a_bench_error(tmp_path):
    folder = fake_runner(tmp_path / "runner", "import sys\nprint('bad flag', file=sys.stderr)\nsys.exit(2)\n")
    with pytest.raises(BenchError, match="exited 2") as e:
        mr.run_once(folder, Path(sys.executable), agents=4, rounds=5, cache=tmp_path / "cache")
    assert "bad flag" in str(e.value)


def test_a_run_past_its_timeout_is_a_bench_error(tmp_path):
    folder = fake_runner(tmp_path / "runner", "import time\ntime.sleep(30)\n")
    with pytest.raises(BenchError, match="did not finish in 1s"):
        mr.run_once(folder, Path(sys.executable), agents=4, rounds=5, cache=tmp_path / "cache", timeout=1.0)


def test_a_venv_holding_the_requirements_is_reused(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    (venv / "murmur-requirements.txt").write_text("a==1\n")
    # A base interpreter that does not exist: reaching it would fail.
    assert mr.ensure_venv(venv, log=lambda _: None, requirements=("a==1",),
                          base_python=str(tmp_path / "none")) == venv / "bin" / "python"


def test_a_venv_with_other_requirements_is_remade_and_a_failure_names_the_step(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    (venv / "murmur-requirements.txt").write_text("a==1\n")
    logged = []
    with pytest.raises(BenchError, match="MiroFish venv: .*none -m venv"):
        mr.ensure_venv(venv, log=logged.append, requirements=("a==2",), base_python=str(tmp_path / "none"))
    assert logged and "a==2" in logged[0]
