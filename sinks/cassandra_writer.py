"""cassandra-sink: ScoredMemory -> memories_by_agent, timeline_by_sim,
agents_by_sim; Reflection -> reflections_by_agent; Conflict -> conflicts_by_sim
and the older memory's valid_to; Verdict -> verdicts_by_sim; Persona ->
personas_by_sim.

A Faust agent like the processors, so it shares their commit order: the
batch is acked only after every write landed (retried with backoff while
Cassandra is away), and every write is an upsert keyed by the memory id.
"""

from __future__ import annotations

import time

import faust

from streams.runtime import Runtime
from sinks.cassandra_store import CassandraStore
from streams.topology import stage

STAGE = "cassandra-sink"
INPUTS, TABLES = stage(STAGE).inputs, stage(STAGE).tables  # declared in streams/topology.py
WRITERS = {
    "ScoredMemory": CassandraStore.memory_writes,
    "Reflection": CassandraStore.reflection_writes,
    "Conflict": CassandraStore.conflict_writes,
    "Verdict": CassandraStore.verdict_writes,
    "Persona": CassandraStore.persona_writes,
}


def register(app: faust.App, rt: Runtime, *, store: CassandraStore | None = None, batch_size: int = 2000,
             within: float = 0.25) -> None:
    if store is None:
        store = CassandraStore(rt.settings)  # connects and applies the schema at the first write
    source = app.topic(*(rt.topic(t) for t in INPUTS))

    @app.agent(source, name=STAGE)
    async def cassandra_sink(stream):
        async for events in stream.take_events(batch_size, within=within):
            started = time.perf_counter()
            batch = rt.decode_events(events, expected=tuple(WRITERS), stage=STAGE)

            def writes():
                # Built (and statements prepared) once the database answers.
                out = []
                for inc in batch:
                    try:
                        out += WRITERS[inc.type_name](store, [inc.record])
                    except (KeyError, TypeError, ValueError) as exc:  # a record the tables cannot hold
                        rt.dead_letter_all(STAGE, [inc], exc)
                return out

            if batch:
                await store.execute_all(writes, sink=STAGE)
            # Dead letters produced while decoding must land before the ack.
            await rt.flush()
            rt.observe_batch(STAGE, started, batch)
