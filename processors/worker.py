"""Run a group of processors as one Faust worker process (the stages and
what they read are declared in ``streams/topology.py``).

Each processor (and sink) is a group of its own in production: one consumer
group, scaled by starting more workers of it. ``all`` runs every one in one
process, which is what a laptop or the demo wants.
"""

from __future__ import annotations

import gc
import importlib
import logging
from types import ModuleType

import faust
from faust import Service
from faust.worker import Worker

from streams import kafka, logs, stall_guard
from streams.app import create_app, group_id
from streams.errors import ConfigError
from streams.kafka import ensure_topics
from streams.llm.preflight import check_models
from streams.metrics import GroupSampler, serve_metrics
from streams.runtime import Runtime
from streams.settings import Settings
from streams.topics import changelog_config
from streams.topology import changelog_topics, input_topics, stage

log = logging.getLogger(__name__)


def module(name: str) -> ModuleType:
    return importlib.import_module(stage(name).module)


def build(settings: Settings, names: list[str], group: str | None = None, journal=None) -> faust.App:
    app = create_app(settings, group or "-".join(names))
    rt = Runtime(settings, journal=journal)
    for name in names:
        module(name).register(app, rt)
    stall_guard.register(app, interval_s=settings.stall_check_s, stall_after_s=settings.stall_after_s, busy=rt.busy)

    @app.service
    class CloseLlm(Service):
        """Closes the LLM client's connections when the worker stops (an
        aiohttp session left open is reported at exit)."""

        async def on_stop(self) -> None:
            await rt.aclose()

    return app


def ensure_changelogs(settings: Settings, group: str, names: list[str]) -> None:
    """Create the tables' changelog topics before Faust starts. Left to
    Faust, a fresh broker's metadata can lag the creation, and the table
    then fails its partition check ("changelog has 0 partitions") and its
    agent stops."""
    ensure_topics(settings, {t: (settings.topic_partitions, changelog_config())
                             for t in changelog_topics(settings, group, names).values()})


def preflight(settings: Settings) -> None:
    """The LLM servers serve the configured models (streams/llm/preflight.py):
    a wrong one stops the worker before it takes any input."""
    checked = check_models(settings.llm)
    for line in checked.warnings:
        log.warning(line)
    if checked.errors:
        raise ConfigError("; ".join(checked.errors))


def tune_gc() -> None:
    """Fewer cyclic collections in a long-running worker. Everything loaded
    so far (modules, the app, models) goes to the permanent generation, and
    the youngest generation is collected every 50,000 allocations instead
    of 700 (a worker allocates a few objects per event field). Measured
    with gc.callbacks over a B3 run (3,000 agents, 12,000 events): the
    collector took 0.75-1.0 s of CPU at Python's defaults, 0.2 s with a
    50,000 threshold; the stage went from 0.53 to 0.43-0.46 ms of CPU an event.
    The older generations still run (every 1M and 10M allocations), so
    cyclic garbage is still reclaimed."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 10)


def resumed_journal(settings: Settings, names: list[str], group: str | None = None):
    """The answers to give again to inputs the group had not committed
    (streams/resume_journal.py), when the group calls a model."""
    if settings.llm.backend != "vllm" or settings.llm.resume_journal_max <= 0 or "agent" not in names:
        return None
    from streams.resume_journal import load

    resumed = load(settings, group_id(settings, group or "-".join(names)), input_topics(settings, names))
    log.info(resumed.line())
    return resumed.journal


def run(settings: Settings, names: list[str], group: str | None = None, loglevel: str = "warning") -> None:
    # Our handler, not Faust's (override_logging=False below): every line,
    # Faust's and aiokafka's too, one JSON object; --loglevel keeps setting
    # the libraries' level as it did.
    logs.configure_from(settings, others=loglevel)
    kafka.log_through(logging.getLogger("librdkafka"))
    preflight(settings)
    app = build(settings, names, group, journal=resumed_journal(settings, names, group))
    ensure_changelogs(settings, group or "-".join(names), names)
    try:
        serve_metrics(settings)
    except OSError as exc:  # a taken port costs the metrics, not the processing
        log.warning("metrics not served on %s:%s: %s", settings.metrics_host, settings.metrics_port, exc)
    GroupSampler(settings, {group_id(settings, group or "-".join(names)): input_topics(settings, names)}).start()
    tune_gc()
    worker = Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False, override_logging=False)
    worker.spinner = None  # Faust's terminal spinner writes cursor codes into the log at stop
    worker.execute_from_commandline()
