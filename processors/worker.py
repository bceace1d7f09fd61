"""Run a group of processors as one Faust worker process.

Each processor (and sink) is a group of its own in production: one consumer
group, scaled by starting more workers of it. ``all`` runs every one in one
process, which is what a laptop or the demo wants.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

import faust

from processors.runtime import Runtime
from streams.app import create_app
from streams.settings import Settings
from streams.topics import topic_name

# name -> module with STAGE, INPUTS and register(app, rt)
PROCESSORS: dict[str, str] = {
    "importance": "processors.importance",
    "reflection": "processors.reflection",
    "contradiction": "processors.contradiction",
    "stance": "processors.stance",
    "verdict": "processors.verdict",
    "cassandra-sink": "sinks.cassandra_writer",
    "checkpointer": "processors.checkpointer",
}


def module(name: str) -> ModuleType:
    if name not in PROCESSORS:
        raise ValueError(f"unknown processor {name!r}; known: {', '.join(PROCESSORS)}")
    return importlib.import_module(PROCESSORS[name])


def resolve(processors: str) -> list[str]:
    """``all`` or a comma-separated list -> processor names (validated)."""
    names = list(PROCESSORS) if processors == "all" else [p.strip() for p in processors.split(",") if p.strip()]
    for n in names:
        module(n)
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
        for spec in module(n).INPUTS:
            name = topic_name(spec, settings.namespace)
            if name not in out:
                out.append(name)
    return out


def build(settings: Settings, names: list[str], group: str | None = None) -> faust.App:
    from processors import stall_guard

    app = create_app(settings, group or "-".join(names))
    rt = Runtime(settings)
    for name in names:
        module(name).register(app, rt)
    stall_guard.register(app, interval_s=settings.stall_check_s, stall_after_s=settings.stall_after_s)
    return app


def changelog_topics(settings: Settings, group: str, names: list[str]) -> dict[str, str]:
    """Table -> changelog topic; Faust names it ``<app id>-<table>-changelog``."""
    from streams.app import group_id

    return {table: f"{group_id(settings, group)}-{table}-changelog"
            for name in names for table in getattr(module(name), "TABLES", ())}


def ensure_changelogs(settings: Settings, group: str, names: list[str]) -> None:
    """Create the tables' changelog topics before Faust starts. Left to
    Faust, a fresh broker's metadata can lag the creation, and the table
    then fails its partition check ("changelog has 0 partitions") and its
    agent stops."""
    from streams.kafka import ensure_topics

    ensure_topics(settings, {t: (settings.topic_partitions, {"cleanup.policy": "compact"})
                             for t in changelog_topics(settings, group, names).values()})


def run(settings: Settings, names: list[str], group: str | None = None, loglevel: str = "warning") -> None:
    from faust.worker import Worker

    from streams.app import group_id
    from streams.metrics import GroupSampler, serve_metrics

    app = build(settings, names, group)
    ensure_changelogs(settings, group or "-".join(names), names)
    try:
        serve_metrics(settings)
    except OSError as exc:  # a taken port costs the metrics, not the processing
        print(f"murmur worker: metrics not served on {settings.metrics_host}:{settings.metrics_port}: {exc}",
              file=sys.stderr)
    GroupSampler(settings, {group_id(settings, group or "-".join(names)): input_topics(settings, names)}).start()
    Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False).execute_from_commandline()
