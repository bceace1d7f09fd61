"""The pipeline's topology, declared once, as data: every stage a worker can
run, the module that registers it, the topics it reads and the tables it
keeps.

The platform (checkpoints, lag, the monitor, changelog creation) needs to
know what each group reads and keeps without importing the processors, so
the facts live here and the processor modules take theirs from here.

Adding a stage: a module with ``register(app, rt)`` (``STAGE``, ``INPUTS``
and ``TABLES`` read from its entry below), and an entry below. That is all a
worker, a checkpoint, the lag report and the docs' tables need.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.settings import Settings
from streams.topics import (AGENT_LOG, CONFLICTS, PERSONAS, REFLECTIONS, ROUNDS, SCORED, SIMULATIONS, STANCES, VERDICTS,
                            TopicSpec, topic_name)


@dataclass(frozen=True)
class Stage:
    name: str
    module: str  # defines register(app, rt)
    inputs: tuple[TopicSpec, ...]
    tables: tuple[str, ...] = ()


STAGES: dict[str, Stage] = {s.name: s for s in (
    # importance -> contradiction -> reflection -> stance, one pass per agent
    # over its log (processors/agent.py; ADR 0005).
    Stage("agent", "processors.agent", (AGENT_LOG,), ("agent-state",)),
    Stage("verdict", "processors.verdict", (STANCES, ROUNDS, SIMULATIONS), ("verdict-state", "verdict-applied", "verdict-authors")),
    Stage("cassandra-sink", "sinks.cassandra_writer", (SCORED, REFLECTIONS, CONFLICTS, VERDICTS, PERSONAS)),
    Stage("checkpointer", "processors.checkpointer", (ROUNDS,)),
)}
PROCESSORS: dict[str, str] = {name: s.module for name, s in STAGES.items()}


# Stages that are now steps of the agent pass: named, they get an upgrade
# message rather than "unknown".
MERGED_INTO_AGENT = ("importance", "reflection", "contradiction", "stance")


def stage(name: str) -> Stage:
    if name in MERGED_INTO_AGENT:
        raise ValueError(f"processor {name!r} is now a step of the 'agent' processor (one ordered pass per agent: "
                         f"importance, contradiction, reflection, stance); run --processors agent instead "
                         f"(upgrade notes: docs/adr/0005-agent-log.md)")
    if name not in STAGES:
        raise ValueError(f"unknown processor {name!r}; known: {', '.join(STAGES)}")
    return STAGES[name]


def resolve(processors: str) -> list[str]:
    """``all`` or a comma-separated list -> processor names (validated)."""
    names = list(STAGES) if processors == "all" else [p.strip() for p in processors.split(",") if p.strip()]
    for n in names:
        stage(n)
    return names


def configured_groups(settings: Settings) -> list[tuple[str, str]]:
    """``settings.processor_groups`` as (group suffix, processors) pairs. An
    entry is a ``--processors`` value, or ``NAME=PROCESSORS`` for workers
    started with ``--group NAME``."""
    out = []
    for entry in settings.processor_groups:
        name, sep, processors = entry.partition("=")
        name, processors = (name.strip(), processors.strip()) if sep else (entry, entry)
        if not name or not processors:
            raise ValueError(f"processor group {entry!r}: expected PROCESSORS or NAME=PROCESSORS")
        resolve(processors)
        out.append((name, processors))
    return out


def input_topics(settings: Settings, names: list[str]) -> list[str]:
    """Physical input topics of some processors (for lag and checkpoints)."""
    out: list[str] = []
    for n in names:
        for spec in stage(n).inputs:
            name = topic_name(spec, settings.namespace)
            if name not in out:
                out.append(name)
    return out


def changelog_topics(settings: Settings, group: str, names: list[str]) -> dict[str, str]:
    """Table -> changelog topic; Faust names it ``<app id>-<table>-changelog``."""
    from streams.app import group_id

    return {table: f"{group_id(settings, group)}-{table}-changelog" for name in names for table in stage(name).tables}
