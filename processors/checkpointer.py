"""checkpointer: a checkpoint of every configured processor group at each
round end (``settings.processor_groups``), the automatic counterpart of
``murmur checkpoint create``.

A checkpoint records *committed* offsets, so it is taken when the round-end
marker reaches this agent, whatever the other groups have processed by then:
restoring it replays from there, and the processors' redelivery handling
(deterministic ids, per-agent dedupe) makes the replayed part land once.
The id is derived from sim, round and group, so a redelivered marker
rewrites the same entry of the compacted checkpoints topic.
"""

from __future__ import annotations

import asyncio
import logging

import faust

from streams import checkpoints
from streams.app import group_id
from streams.metrics import CHECKPOINTS_TAKEN
from streams.runtime import Effects, Incoming, Runtime, register_batches
from streams.topology import configured_groups, stage

log = logging.getLogger(__name__)

STAGE = "checkpointer"
INPUTS, TABLES = stage(STAGE).inputs, stage(STAGE).tables  # declared in streams/topology.py


def checkpoint_id(sim_id: str, round_: int, group_id: str) -> str:
    # The consumer group id (namespace included): the checkpoints topic is
    # shared, and a replay's groups must not overwrite the live ones' entries.
    return f"ckpt-{sim_id}-r{round_:05d}-{group_id}"


def take(rt: Runtime, groups: list[tuple[str, str]], round_ends: list[tuple[str, int]]) -> list[str]:
    """One snapshot per (group, processors), saved once per round end of the
    batch (round ends read together would record the same committed offsets
    anyway). Blocking (Kafka admin reads): run in a thread."""
    records = []
    for group, processors in groups:
        snap = checkpoints.create(rt.settings, processors=processors, group=group, note="round end")
        for sim_id, round_ in round_ends:
            records.append({**snap, "event_id": checkpoint_id(sim_id, round_, group_id(rt.settings, group)),
                            "sim_id": sim_id,
                            "round": round_})
    checkpoints.save_all(rt.settings, records)
    CHECKPOINTS_TAKEN.labels("round_end").inc(len(records))
    return [r["event_id"] for r in records]


def register(app: faust.App, rt: Runtime, *, batch_size: int = 100, within: float = 0.5):
    if not rt.settings.processor_groups:
        return None
    groups = configured_groups(rt.settings)  # a bad entry stops the worker at start, not at a round end

    async def handle(batch: list[Incoming]) -> Effects:
        ends = sorted({(i.record["sim_id"], i.record["round"]) for i in batch if i.record["kind"] == "round_end"})
        if ends:
            try:
                await asyncio.to_thread(take, rt, groups, ends)
            except Exception as exc:  # a missed checkpoint must not stop the stream
                log.warning("checkpoints at round ends %s failed: %s", ends, exc)
        return Effects()

    return register_batches(app, rt, stage=STAGE, inputs=INPUTS, expected=("RoundMarker",), handle=handle,
                            batch_size=batch_size, within=within)
