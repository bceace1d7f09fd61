"""Run a group of processors as one Faust worker process.

Each processor (and sink) is a group of its own in production: one consumer
group, scaled by starting more workers of it. ``all`` runs every one in one
process, which is what a laptop or the demo wants.
"""

from __future__ import annotations

import logging
from typing import Callable

import faust

from processors import importance
from processors.runtime import Runtime
from streams.app import create_app
from streams.settings import Settings

log = logging.getLogger(__name__)


def _importance(app: faust.App, rt: Runtime) -> None:
    importance.register(app, rt)


def _cassandra_sink(app: faust.App, rt: Runtime) -> None:
    from sinks import cassandra_writer
    from sinks.cassandra_store import CassandraStore

    store = CassandraStore(rt.settings)
    store.apply_schema()
    cassandra_writer.register(app, rt, store)


PROCESSORS: dict[str, Callable[[faust.App, Runtime], None]] = {
    "importance": _importance,
    "cassandra-sink": _cassandra_sink,
}


def build(settings: Settings, names: list[str], group: str | None = None) -> faust.App:
    unknown = [n for n in names if n not in PROCESSORS]
    if unknown:
        raise ValueError(f"unknown processor(s) {unknown}; known: {', '.join(PROCESSORS)}")
    app = create_app(settings, group or "-".join(names))
    rt = Runtime(settings)
    for name in names:
        PROCESSORS[name](app, rt)
    return app


def run(settings: Settings, names: list[str], group: str | None = None, loglevel: str = "warning") -> None:
    from faust.worker import Worker

    app = build(settings, names, group)
    Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False).execute_from_commandline()



def input_topics(settings: Settings, names: list[str]) -> list[str]:
    """Physical input topics of some processors (for lag and checkpoints)."""
    from streams.topics import OBSERVATIONS, POSTS, SCORED, topic_name

    inputs = {
        "importance": [topic_name(POSTS), topic_name(OBSERVATIONS)],
        "cassandra-sink": [topic_name(SCORED, settings.namespace)],
    }
    return [t for n in names for t in inputs[n]]


def resolve(processors: str) -> list[str]:
    """``all`` or a comma-separated list -> processor names."""
    return list(PROCESSORS) if processors == "all" else [p.strip() for p in processors.split(",") if p.strip()]
