"""stall guard: a worker re-reads an input partition whose commit stopped.

A partition is stalled when its committed offset is behind the end of the
partition, neither the committed nor the read offset has moved for
``stall_after_s`` seconds, none of its messages is in the worker (not
queued for a stream, not taken by one and waiting for its ack), and either
offsets after the committed one were acked (the message at the committed
offset is lost to Faust: skipped while the worker resumed its streams, and
the corrected commit rule of :mod:`streams.faust_consumer` refuses to jump
over it) or the whole worker is idle (so nothing holds the partition back:
its fetching stopped). A partition merely waiting behind other partitions'
backlog is neither. Seeking the partition
back to its committed offset reads the message again; the messages after it
are read twice, which the processors absorb (deterministic ids, per-agent
dedupe, keyed upserts).

A partition that stays stalled after ``max_reseeks`` seeks crashes the
worker with a message naming it: a process supervisor restarts it, and a
fresh consumer starts from the committed offsets.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import faust
from faust.types import TP

from streams.faust_consumer import unacked_head
from streams.metrics import PARTITION_RESEEKS

log = logging.getLogger(__name__)


@dataclass
class _Watch:
    key: tuple
    since: float
    reseeks: int = 0


@dataclass
class StallDetector:
    """The decision, kept apart from Faust so it can be tested alone."""

    stall_after_s: float
    max_reseeks: int = 3
    _watch: dict = field(default_factory=dict)

    def check(self, tp, now: float, *, committed: int | None, end: int | None, read: int | None,
              busy: bool, acked_ahead: bool, worker_idle: bool) -> str:
        """``ok``, ``reseek`` or ``give_up`` for one partition at ``now``."""
        if committed is None or end is None or committed >= end or busy or not (acked_ahead or worker_idle):
            self._watch.pop(tp, None)
            return "ok"
        key = (committed, read)
        w = self._watch.get(tp)
        if w is None or w.key != key:
            # progress (or a first sighting) restarts the clock; a partition
            # that moves after a seek has recovered, so its count starts over
            self._watch[tp] = _Watch(key, now, 0 if w is None or w.key[0] != committed else w.reseeks)
            return "ok"
        if now - w.since < self.stall_after_s:
            return "ok"
        if w.reseeks >= self.max_reseeks:
            return "give_up"
        w.reseeks += 1
        w.since = now
        return "reseek"


def busy_partitions(app: faust.App) -> set:
    """Partitions with a message in the worker: queued for a stream (not yet
    taken), or taken by one and not acked. One pass over the queues and the
    unacked set per tick, however many partitions there are."""
    busy = {m.tp for m in list(app.consumer._unacked_messages) if not m.acked}
    channels = {id(c): c for cs in list(app.topics._tp_index.values()) for c in cs}
    for channel in channels.values():
        for event in list(channel.queue._queue):
            message = getattr(event, "message", None)
            if message is not None:
                busy.add(message.tp)
    return busy


def register(app: faust.App, *, interval_s: float, stall_after_s: float, max_reseeks: int = 3) -> StallDetector:
    detector = StallDetector(stall_after_s, max_reseeks)
    if interval_s <= 0:
        return detector

    @app.timer(interval_s, on_leader=False)
    async def stall_guard() -> None:
        consumer = app.consumer
        if app.rebalancing or not consumer.flow_active or not app.tables.recovery.completed.is_set():
            return
        tps = [tp for tp in consumer.assignment()
               if app.topics.acks_enabled_for(tp.topic) and not consumer._is_changelog_tp(tp)]
        unknown = [tp for tp in tps if consumer.highwater(tp) is None]
        ends = dict(await consumer.highwaters(*unknown)) if unknown else {}
        now = app.loop.time()
        busy = busy_partitions(app)
        idle = not busy
        for tp in tps:
            committed = consumer._committed_offset.get(tp)
            end = consumer.highwater(tp)
            end = ends.get(tp) if end is None else end
            verdict = detector.check(tp, now, committed=committed, end=end, read=consumer._read_offset.get(tp),
                                     busy=tp in busy, acked_ahead=unacked_head(consumer, tp) is not None,
                                     worker_idle=idle)
            if verdict == "reseek":
                log.warning("stall guard: %s[%d] committed %s, end %s, acked ahead %s, %s for %.0fs: "
                            "seeking back to %s", tp.topic, tp.partition, committed, end,
                            sorted(consumer._acked.get(tp) or [])[:5],
                            "nothing of it in flight" if not idle else "the worker idle", stall_after_s, committed)
                PARTITION_RESEEKS.labels(tp.topic).inc()
                await consumer.seek(tp, committed)
            elif verdict == "give_up":
                await app.crash(RuntimeError(
                    f"input partition {tp.topic}[{tp.partition}] stays at committed offset {committed} "
                    f"(end {end}) after {max_reseeks} seeks; restarting the worker re-reads it"))
                return

    return detector
