"""cassandra-sink: ScoredMemory -> memories_by_agent, timeline_by_sim, agents_by_sim.

A Faust agent like the processors, so it shares their commit order: the
batch is acked only after every write landed (retried with backoff while
Cassandra is away), and every write is an upsert keyed by the memory id.
"""

from __future__ import annotations

import time

import faust

from processors.runtime import Runtime
from sinks.cassandra_store import CassandraStore
from streams.metrics import BATCH_SECONDS
from streams.topics import SCORED

STAGE = "cassandra-sink"


def register(app: faust.App, rt: Runtime, store: CassandraStore, *, batch_size: int = 2000, within: float = 0.25) -> None:
    @app.agent(app.topic(rt.topic(SCORED)), name=STAGE)
    async def cassandra_sink(stream):
        async for events in stream.take_events(batch_size, within=within):
            started = time.perf_counter()
            batch = rt.decode_events(events, expected=("ScoredMemory",), stage=STAGE)
            if batch:
                await store.execute_all(store.memory_writes(inc.record for inc in batch))
            # Dead letters produced while decoding must land before the ack.
            await rt.flush()
            BATCH_SECONDS.labels(STAGE).observe(time.perf_counter() - started)
