"""cassandra-sink: ScoredMemory -> memories_by_agent, timeline_by_sim,
agents_by_sim; Reflection -> reflections_by_agent; Conflict -> conflicts_by_sim,
conflicts_by_agent and the older memory's valid_to; Verdict -> verdicts_by_sim; Persona ->
personas_by_sim.

A Faust agent like the processors, so it shares their commit order: the
batch is acked only after every write landed (retried with backoff while
Cassandra is away), and every write is an upsert keyed by the memory id.
A record Cassandra refuses for its own values is dead-lettered after
MURMUR_SINK_REFUSAL_TRIES tries while the rest of its batch lands
(sinks/refusals.py).
"""

from __future__ import annotations

import asyncio

import faust

from sinks.cassandra_store import CassandraStore, WritesRefused
from sinks.refusals import cassandra_refused, give_up
from streams.metrics import SINK_REFUSED
from streams.runtime import Effects, Incoming, Runtime, register_batches
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
             within: float | None = None):
    if store is None:
        store = CassandraStore(rt.settings)  # connects and applies the schema at the first write

    async def handle(batch: list[Incoming]) -> Effects:
        failed: list[tuple[list[Incoming], BaseException]] = []

        def writes():
            # Built (and statements prepared) once the database answers.
            out = []
            for inc in batch:
                try:
                    out += WRITERS[inc.type_name](store, [inc.record])
                except (KeyError, TypeError, ValueError) as exc:  # a record the tables cannot hold
                    failed.append(([inc], exc))
            return out

        # The view's writes are this stage's effect: retried while Cassandra
        # is away, so the batch is acked only once every row landed.
        try:
            await store.execute_all(writes, sink=STAGE, refused=cassandra_refused)
        except WritesRefused:
            # A record Cassandra refuses for its own values: find it by
            # writing record by record, so the rest land and only it is
            # dead-lettered (sinks/refusals.py).
            bad = {id(inc) for items, _ in failed for inc in items}
            for inc in batch:
                if id(inc) not in bad:
                    refusal = await write_alone(store, inc, rt.settings.sink_refusal_tries)
                    if refusal is not None:
                        failed.append(([inc], refusal))
        return Effects(failed=failed)

    async def write_alone(store: CassandraStore, inc: Incoming, max_tries: int) -> BaseException | None:
        """Write one record; its refusal once it is final, or None once landed."""
        tries = 0
        while True:
            try:
                await store.execute_all(lambda: WRITERS[inc.type_name](store, [inc.record]), sink=STAGE,
                                        refused=cassandra_refused)
                return None
            except WritesRefused as exc:
                tries += 1
                if give_up(tries, max_tries, await store.answers()):
                    SINK_REFUSED.labels(STAGE).inc()
                    return exc.cause
                await asyncio.sleep(min(5.0, 0.2 * 2 ** tries))

    return register_batches(app, rt, stage=STAGE, inputs=INPUTS, expected=tuple(WRITERS), handle=handle,
                            batch_size=batch_size, within=within)
