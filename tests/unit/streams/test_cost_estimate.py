"""``murmur estimate``: the arithmetic (streams/cost_estimate.py) by hand,
the measuring step (bench/costs.py) against what the agent pass must call,
the committed costs file, and the command."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bench.costs import COSTS_FILE, measure
from streams.cli import app
from streams.cost_estimate import Workload, estimate, load_costs, table
from streams.errors import ConfigError

COSTS = {
    "measured_at": "2026-01-01T00:00:00Z", "command": "python -m bench.costs", "token_rule": "chars / 4",
    "workload": {"agents": 10, "rounds": 2, "input_events": 20, "input_events_per_agent_round": 1.0},
    "tasks": {
        "fast/memory": {"stage": "agent", "role": "fast",
                        "per_event": {"calls": 1.1, "prompt_tokens": 500.0, "completion_tokens": 30.0}},
        "balanced/reflection": {"stage": "agent", "role": "balanced",
                                "per_event": {"calls": 0.1, "prompt_tokens": 40.0, "completion_tokens": 20.0}},
        "heavy/judge": {"stage": "verdict", "role": "heavy",
                        "per_event": {"calls": 0.5, "prompt_tokens": 100.0, "completion_tokens": 100.0}},
    },
}
RATES = {"fast": 1000.0, "balanced": 500.0, "heavy": 100.0}


def test_rates_times_events_and_tokens_over_throughput():
    est = estimate(COSTS, Workload(agents=100, rounds=5, events_per_agent_round=2.0), stages={"agent"},
                   tokens_per_s=RATES)
    assert est.input_events == 1000
    rows = {r.task: r for r in est.rows}
    assert set(rows) == {"fast/memory", "balanced/reflection"} and est.skipped == ["heavy/judge"]
    fast = rows["fast/memory"]
    assert (fast.calls, fast.prompt_tokens, fast.completion_tokens) == pytest.approx((1100, 500_000, 30_000))
    assert fast.gpu_seconds == pytest.approx(530_000 / 1000)
    assert rows["balanced/reflection"].gpu_seconds == pytest.approx(60_000 / 500)
    assert est.total("gpu_seconds") == pytest.approx(530 + 120)


def test_a_total_of_events_replaces_the_rate_and_every_stage_may_count():
    est = estimate(COSTS, Workload(agents=3, rounds=3, events=10), stages={"agent", "verdict"}, tokens_per_s=RATES)
    assert est.input_events == 10 and est.total("calls") == pytest.approx(10 * (1.1 + 0.1 + 0.5))
    assert est.as_dict()["totals"]["gpu_seconds"] == pytest.approx(5300 / 1000 + 600 / 500 + 2000 / 100)


@pytest.mark.parametrize("workload, message", [
    (Workload(agents=0, rounds=1, events_per_agent_round=1), "at least 1"),
    (Workload(agents=1, rounds=1), "not both"),
    (Workload(agents=1, rounds=1, events_per_agent_round=1, events=3), "not both"),
    (Workload(agents=1, rounds=1, events=-1), "negative"),
])
def test_a_bad_workload_says_what_is_wrong(workload, message):
    with pytest.raises(ValueError, match=message):
        estimate(COSTS, workload, stages={"agent"}, tokens_per_s=RATES)


def test_a_role_without_a_throughput_names_the_setting():
    with pytest.raises(ConfigError, match="MURMUR_ESTIMATE__TOKENS_PER_S"):
        estimate(COSTS, Workload(1, 1, events=1), stages={"verdict"}, tokens_per_s={"fast": 1.0})


def test_the_table_states_its_basis_and_its_assumption():
    text = table(estimate(COSTS, Workload(10, 2, 1.0), stages={"agent"}, tokens_per_s=RATES), "costs.json")
    assert "basis: costs.json, measured 2026-01-01T00:00:00Z by `python -m bench.costs`" in text
    assert "assumption: GPU-s = tokens / throughput" in text and "not a measurement" in text
    assert "not counted (their stage is not among the processors): heavy/judge" in text


def test_stages_that_made_no_call_are_named():
    est = estimate(COSTS, Workload(10, 2, 1.0), stages=["agent", "checkpointer"], tokens_per_s=RATES)
    assert est.no_calls == ["checkpointer"] and "no model calls measured in: checkpointer" in table(est, "c.json")


def test_a_missing_or_broken_costs_file_says_how_to_write_it(tmp_path):
    with pytest.raises(ConfigError, match="bench.costs"):
        load_costs(tmp_path / "none.json")
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**COSTS, "tasks": {"fast/memory": {"stage": "agent", "role": "fast",
                                                                      "per_event": {"calls": 1}}}}))
    with pytest.raises(ConfigError, match="per_event.completion_tokens, per_event.prompt_tokens"):
        load_costs(broken)


def test_measuring_counts_one_memory_call_per_event_and_one_per_reflection():
    costs = measure(agents=12, rounds=6)
    tasks, events = costs["tasks"], costs["workload"]["input_events"]
    assert events > 0
    # Every post and observation is read in one memory call, and every
    # reflection's beliefs in one more (processors/agent.py): the model
    # path was taken, and nothing was counted twice.
    assert tasks["fast/memory"]["calls"] == events + tasks["balanced/reflection"]["calls"]
    assert tasks["balanced/reflection"]["calls"] > 0 and tasks["fast/memory"]["completion_tokens"] > 0
    assert not any(t.endswith("/stance") for t in tasks)  # a post's valence comes with its memory call
    per = tasks["fast/memory"]["per_event"]
    assert per["calls"] == pytest.approx(tasks["fast/memory"]["calls"] / events)


def test_the_committed_costs_file_is_what_the_measuring_step_writes():
    costs = load_costs(COSTS_FILE)
    again = measure(agents=costs["workload"]["agents"], rounds=costs["workload"]["rounds"],
                    seed=costs["workload"]["seed"])
    # Deterministic answers: re-measuring gives the same figures, until a
    # prompt or a processor changes, and then the file must be written again.
    assert again["tasks"] == costs["tasks"], "prompts or processors changed: run python -m bench.costs"


def test_the_command_prints_a_table_or_json(tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["estimate", "--agents", "200", "--rounds", "5", "--json"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    costs = load_costs(COSTS_FILE)
    rate = costs["workload"]["input_events_per_agent_round"]
    assert got["input_events"] == pytest.approx(200 * 5 * rate)
    assert got["totals"]["calls"] == pytest.approx(sum(t["per_event"]["calls"] for t in costs["tasks"].values())
                                                   * 200 * 5 * rate)
    r = runner.invoke(app, ["estimate", "--agents", "200", "--rounds", "5", "--tokens-per-s", "1000"])
    assert r.exit_code == 0 and "fast 1,000 tokens/s" in r.stdout and "total" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["--rounds", "5"], "give --agents and --rounds"),
    (["--agents", "2", "--rounds", "5", "--events", "9", "--events-per-agent-round", "1"], "not both"),
    (["--agents", "2", "--rounds", "5", "--processors", "nope"], "nope"),
])
def test_the_command_refuses_bad_input_with_exit_2(args, message):
    r = CliRunner().invoke(app, ["estimate", *args])
    assert r.exit_code == 2 and message in r.output


def test_measure_writes_the_costs_file_it_is_pointed_at(tmp_path, monkeypatch):
    import bench.costs

    monkeypatch.setattr(bench.costs, "measure", lambda: measure(agents=8, rounds=3))  # small: the test's time
    out = tmp_path / "costs.json"
    r = CliRunner().invoke(app, ["estimate", "--measure", "--costs", str(out)])
    assert r.exit_code == 0, r.output
    assert load_costs(out)["workload"]["agents"] == 8


def test_the_costs_agree_with_b7_measured_through_a_server():
    """B7 ran the whole pipeline with the LLM over HTTP (the dev server) and
    counted the LlmCall events; the in-process measurement must tell the
    same story per event, within 10% (different synthetic simulations)."""
    from tests.paths import ROOT

    b7 = json.loads((ROOT / "bench" / "results" / "b7-after.json").read_text())["benchmarks"]["B7"]["figures"]
    ours = load_costs(COSTS_FILE)["tasks"]
    for task in ("fast/memory", "balanced/reflection"):
        role, per = task.split("/")[0], ours[task]["per_event"]
        assert per["calls"] * 1000 == pytest.approx(b7[f"{role}_calls_per_1000"]["median"], rel=0.1), task
        tokens = (per["prompt_tokens"] + per["completion_tokens"]) * 1000
        assert tokens == pytest.approx(b7[f"{role}_tokens_per_1000"]["median"], rel=0.1), task
