"""``murmur estimate``: LLM calls, tokens and GPU time a simulation of a
given size will cost, before it runs (streams/cost_estimate.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from streams.settings import get_settings


def estimate(
    agents: Optional[int] = typer.Option(None, min=1, help="Agents in the simulation"),
    rounds: Optional[int] = typer.Option(None, min=1, help="Rounds it runs"),
    events_per_agent_round: Optional[float] = typer.Option(
        None, min=0, help="Posts and observations per agent and round (default: the measured workload's)"),
    events: Optional[int] = typer.Option(None, min=0, help="Total posts and observations, instead of a per-agent rate"),
    processors: str = typer.Option("all", help="The processors that will run, as given to `murmur worker`"),
    tokens_per_s: Optional[float] = typer.Option(
        None, min=1, help="GPU throughput for every role, tokens/s (default: MURMUR_ESTIMATE__TOKENS_PER_S)"),
    costs: Optional[Path] = typer.Option(None, help="Measured-costs file (default: MURMUR_ESTIMATE__COSTS_FILE)"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table"),
    measure: bool = typer.Option(False, "--measure", help="First measure the costs again (python -m bench.costs) "
                                                          "and write the costs file"),
):
    """Pre-flight cost of a simulation: LLM calls by stage, prompt and completion
    tokens, GPU-seconds, from measured per-event costs."""
    from streams.cli_common import fail
    from streams.cost_estimate import Workload, estimate as compute, load_costs, table
    from streams.errors import ConfigError
    from streams.topology import resolve

    settings = get_settings()
    path = costs or settings.estimate.costs_file
    if measure:
        from bench.costs import measure as run_measure

        path.write_text(json.dumps(run_measure(), indent=1) + "\n", encoding="utf-8")
        typer.echo(f"measured costs written to {path}", err=True)
        if agents is None and rounds is None:
            return
    if agents is None or rounds is None:
        fail("give --agents and --rounds (or --measure alone to measure the costs again)", 2)
    if events is not None and events_per_agent_round is not None:
        fail("give --events-per-agent-round or --events, not both", 2)
    try:
        stages = resolve(processors)
    except ValueError as exc:
        fail(str(exc), 2)
    try:
        measured = load_costs(path)
        if events is None and events_per_agent_round is None:
            events_per_agent_round = measured["workload"]["input_events_per_agent_round"]
        rates = {role: tokens_per_s for role in settings.estimate.tokens_per_s} if tokens_per_s \
            else dict(settings.estimate.tokens_per_s)
        est = compute(measured, Workload(agents, rounds, events_per_agent_round, events), stages=stages,
                      tokens_per_s=rates)
    except (ConfigError, ValueError) as exc:
        fail(str(exc), 2)
    if as_json:
        typer.echo(json.dumps({"costs_file": str(path), **est.as_dict()}, indent=1))
    else:
        typer.echo(table(est, str(path)))
