"""Prometheus metrics shared by workers and the API.

Names follow Prometheus conventions: the unit in the name, ``_total`` for
counters. Every process keeps them in prometheus-client's default registry;
workers serve it with :func:`serve_metrics`, the API at ``GET /metrics``.
LLM call metrics live next to the client (streams/llm/metrics.py).
"""

from __future__ import annotations

import logging
import threading
import time

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from streams.settings import Settings

log = logging.getLogger(__name__)

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

EVENTS_IN = Counter("murmur_events_in_total", "Events read by a processor", ["processor", "topic"])
EVENTS_OUT = Counter("murmur_events_out_total", "Events produced by a processor", ["processor", "topic"])
DEAD_LETTERS = Counter("murmur_dead_letters_total", "Records sent to the dead-letter topic", ["stage", "reason"])
BATCH_SECONDS = Histogram(
    "murmur_batch_processing_seconds", "Time to process one batch, flush included", ["processor"], buckets=_SECONDS,
)
EVENT_AGE_SECONDS = Histogram(
    "murmur_event_age_seconds", "Time from an input's Kafka timestamp (when it was produced) to the end of its processing",
    ["processor"], buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
SINK_WRITE_SECONDS = Histogram(
    "murmur_sink_write_seconds", "Time to write one batch to a sink", ["sink"], buckets=_SECONDS,
)
SINK_RETRIES = Counter("murmur_sink_retries_total", "Sink write attempts that failed and were retried", ["sink"])
SINK_REFUSED = Counter("murmur_sink_refused_total",
                       "Records a sink's view refused (not an outage), dead-lettered after retries", ["sink"])
IMPORTANCE_FALLBACKS = Counter("murmur_importance_fallbacks_total", "Memories scored with the fallback importance 5", [])
IMPORTANCE_REPEATS = Counter("murmur_importance_already_scored_total",
                             "Posts and observations skipped because their event id was scored before (re-sent input)",
                             [])
EMBED_FAILURES = Counter("murmur_embed_failures_total", "Memories stored without an embedding because the embedder failed", [])
CONSUMER_LAG = Gauge(
    "murmur_consumer_lag_messages", "End offset minus committed offset, per input partition of a group",
    ["group", "topic", "partition"],
)
CHECKPOINT_AGE = Gauge(
    "murmur_checkpoint_age_seconds", "Seconds since the newest checkpoint of a group was taken (-1: none yet)",
    ["group"],
)
PARTITION_RESEEKS = Counter(
    "murmur_partition_reseeks_total",
    "Input partitions sought back to their committed offset by the stall guard (streams/stall_guard.py)", ["topic"],
)
VECTOR_INDEX_BUILDS = Counter("murmur_vector_index_builds_total",
                              "HNSW index builds of the in-process vector shard, by outcome (swapped, failed)",
                              ["outcome"])
VECTOR_INDEX_SECONDS = Histogram("murmur_vector_index_build_seconds",
                                 "Time a child process took to build the in-process shard's HNSW index",
                                 buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600))
CHECKPOINTS_TAKEN = Counter("murmur_checkpoints_total", "Checkpoints written, by trigger", ["trigger"])


def serve_metrics(settings: Settings) -> int | None:
    """Serve the default registry on ``metrics_host:metrics_port`` (0: off)."""
    if not settings.metrics_port:
        return None
    start_http_server(settings.metrics_port, addr=settings.metrics_host)
    return settings.metrics_port


def sample_group(settings: Settings, group: str, topics: list[str], checkpoints=None) -> None:
    """One sample of a group's lag per partition and of its checkpoint age
    (``checkpoints``: a streams.checkpoints.NewestByGroup)."""
    from streams.kafka import group_lag

    for p in group_lag(settings, group, topics):
        CONSUMER_LAG.labels(group, p.topic, str(p.partition)).set(p.lag)
    if checkpoints is not None:
        ts = checkpoints.refresh().get(group)
        CHECKPOINT_AGE.labels(group).set(-1 if ts is None else max(0.0, time.time() - ts / 1000.0))


class GroupSampler:
    """Samples lag and checkpoint age of some groups in a daemon thread:
    these are Kafka admin reads, kept off the event loop of the process."""

    def __init__(self, settings: Settings, groups: dict[str, list[str]]) -> None:
        self.settings = settings
        self.groups = groups
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-sampler", daemon=True)

    def start(self) -> "GroupSampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        from streams.checkpoints import NewestByGroup

        checkpoints = NewestByGroup(self.settings)
        while not self._stop.is_set():
            for group, topics in self.groups.items():
                try:
                    sample_group(self.settings, group, topics, checkpoints)
                except Exception as exc:  # a broker blip must not kill the sampler
                    log.warning("metrics sample of %s failed: %s", group, exc)
            self._stop.wait(self.settings.metrics_sample_s)
        checkpoints.close()
