"""Prometheus metrics shared by workers (names: units in names, _total for counters)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS_IN = Counter("murmur_events_in_total", "Events read by a processor", ["processor", "topic"])
EVENTS_OUT = Counter("murmur_events_out_total", "Events produced by a processor", ["processor", "topic"])
DEAD_LETTERS = Counter("murmur_dead_letters_total", "Records sent to the dead-letter topic", ["stage", "reason"])
BATCH_SECONDS = Histogram(
    "murmur_batch_processing_seconds", "Time to process one batch, flush included", ["processor"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SINK_WRITE_SECONDS = Histogram(
    "murmur_sink_write_seconds", "Time to write one batch to a sink", ["sink"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SINK_RETRIES = Counter("murmur_sink_retries_total", "Sink write attempts that failed and were retried", ["sink"])
IMPORTANCE_FALLBACKS = Counter("murmur_importance_fallbacks_total", "Memories scored with the fallback importance 5", [])
EMBED_FAILURES = Counter("murmur_embed_failures_total", "Memories stored without an embedding because the embedder failed", [])
