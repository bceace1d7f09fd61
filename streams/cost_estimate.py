"""The arithmetic of ``murmur estimate``: measured LLM costs per input event
(``bench/costs.py`` writes them to ``bench/results/costs.json``) times a
simulation's size, and GPU time from an assumed throughput.

Pure functions over plain data, so the figures are tested without a model
server and re-derivable by hand from the costs file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from streams.errors import ConfigError

REMEASURE = "python -m bench.costs (or murmur estimate --measure)"


@dataclass(frozen=True)
class Workload:
    """A simulation's size. Input events are posts and observations (what
    the agent stage reads and pays for); given as a total or per agent and
    round."""

    agents: int
    rounds: int
    events_per_agent_round: float | None = None
    events: int | None = None

    def input_events(self) -> float:
        if self.agents < 1 or self.rounds < 1:
            raise ValueError("agents and rounds must be at least 1")
        if (self.events is None) == (self.events_per_agent_round is None):
            raise ValueError("give the events per agent and round, or the total events, not both")
        if self.events is not None:
            if self.events < 0:
                raise ValueError("events must not be negative")
            return float(self.events)
        if self.events_per_agent_round < 0:
            raise ValueError("events per agent and round must not be negative")
        return self.agents * self.rounds * self.events_per_agent_round


@dataclass(frozen=True)
class Row:
    """One kind of call: ``task`` is role/task as the LlmCall records name it."""

    task: str
    stage: str
    role: str
    when: str  # what makes such a call (the costs file says)
    calls: float
    prompt_tokens: float
    completion_tokens: float
    gpu_seconds: float


@dataclass(frozen=True)
class Estimate:
    input_events: float
    rows: list[Row]
    skipped: list[str] = field(default_factory=list)  # tasks of stages not enabled
    no_calls: list[str] = field(default_factory=list)  # enabled stages that made no call in the measurement
    basis: dict = field(default_factory=dict)
    tokens_per_s: dict[str, float] = field(default_factory=dict)
    workload: dict = field(default_factory=dict)

    def total(self, name: str) -> float:
        return sum(getattr(r, name) for r in self.rows)

    def as_dict(self) -> dict:
        return {"workload": self.workload, "input_events": self.input_events, "rows": [asdict(r) for r in self.rows],
                "totals": {k: self.total(k) for k in ("calls", "prompt_tokens", "completion_tokens", "gpu_seconds")},
                "skipped_tasks": self.skipped, "stages_without_calls": self.no_calls, "basis": self.basis,
                "assumption": {"tokens_per_s": self.tokens_per_s,
                               "gpu_seconds": "(prompt + completion tokens) / tokens_per_s of the call's role"}}


def load_costs(path: Path) -> dict:
    """The measured-costs file, checked for what the arithmetic reads."""
    try:
        costs = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no measured costs at {path}: write them with {REMEASURE}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not JSON ({exc}); write it again with {REMEASURE}") from None
    for name, task in (costs.get("tasks") or {}).items():
        missing = {"stage", "role", "per_event"} - task.keys()
        per = task.get("per_event", {})
        missing |= {f"per_event.{k}" for k in ("calls", "prompt_tokens", "completion_tokens") if k not in per}
        if missing:
            raise ConfigError(f"{path}: task {name!r} lacks {', '.join(sorted(missing))}; "
                              f"write it again with {REMEASURE}")
    if not costs.get("tasks") or "workload" not in costs:
        raise ConfigError(f"{path} holds no measured tasks or workload; write it again with {REMEASURE}")
    return costs


def estimate(costs: dict, workload: Workload, *, stages: set[str] | list[str],
             tokens_per_s: dict[str, float]) -> Estimate:
    """Calls and tokens of each measured task, scaled from per-event rates to
    the workload's input events; only tasks of the given stages count."""
    events = workload.input_events()
    rows, skipped = [], []
    for name, task in sorted(costs["tasks"].items()):
        if task["stage"] not in stages:
            skipped.append(name)
            continue
        rate = tokens_per_s.get(task["role"])
        if not rate or rate <= 0:
            raise ConfigError(f"no GPU throughput for role {task['role']!r}: set MURMUR_ESTIMATE__TOKENS_PER_S "
                              f"(a JSON object of role -> tokens/s) or --tokens-per-s")
        per = task["per_event"]
        prompt, completion = per["prompt_tokens"] * events, per["completion_tokens"] * events
        rows.append(Row(name, task["stage"], task["role"], task.get("when", ""), per["calls"] * events,
                        prompt, completion, (prompt + completion) / rate))
    basis = {k: costs.get(k) for k in ("measured_at", "command", "workload", "token_rule", "notes")}
    calling = {t["stage"] for t in costs["tasks"].values()}
    return Estimate(events, rows, skipped, [s for s in stages if s not in calling], basis,
                    {r.role: tokens_per_s[r.role] for r in rows}, asdict(workload))


def table(est: Estimate, costs_path: str) -> str:
    """The estimate as text: a table, then what it rests on."""
    head = ("stage", "role/task", "calls", "prompt tokens", "completion tokens", "GPU-s")
    body = [(r.stage, r.task, f"{r.calls:,.0f}", f"{r.prompt_tokens:,.0f}", f"{r.completion_tokens:,.0f}",
             f"{r.gpu_seconds:,.1f}") for r in est.rows]
    body.append(("", "total", f"{est.total('calls'):,.0f}", f"{est.total('prompt_tokens'):,.0f}",
                 f"{est.total('completion_tokens'):,.0f}", f"{est.total('gpu_seconds'):,.1f}"))
    widths = [max(len(row[i]) for row in (head, *body)) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*head), *(fmt.format(*row) for row in body), ""]
    lines += [f"{r.task}: {r.when}" for r in est.rows if r.when]
    w = est.basis.get("workload") or {}
    asked = est.workload
    size = (f"{asked['events']:,} given" if asked.get("events") is not None else
            f"{asked['agents']:,} agents x {asked['rounds']:,} rounds x "
            f"{asked['events_per_agent_round']:g} per agent and round")
    lines += [
        "",
        f"input events (posts and observations): {est.input_events:,.0f} ({size})",
        f"basis: {costs_path}, measured {est.basis.get('measured_at')} by `{est.basis.get('command')}`: "
        f"{w.get('agents')} agents x {w.get('rounds')} rounds, {w.get('input_events')} events "
        f"({w.get('case')}, {w.get('generator')}); tokens: {est.basis.get('token_rule')}",
        "assumption: GPU-s = tokens / throughput of the role's vLLM deployment ("
        + ", ".join(f"{role} {rate:,.0f} tokens/s" for role, rate in sorted(est.tokens_per_s.items()))
        + "; MURMUR_ESTIMATE__TOKENS_PER_S), not a measurement",
    ]
    if not est.rows:
        lines[-1] = "no model calls: none of the processors given calls a model"
    if est.no_calls:
        lines.append(f"no model calls measured in: {', '.join(est.no_calls)}")
    if est.skipped:
        lines.append(f"not counted (their stage is not among the processors): {', '.join(est.skipped)}")
    return "\n".join(lines)
