"""stall guard: a worker re-reads an input partition whose commit stopped.

A partition is stalled when its committed offset is behind the end of the
partition, none of its messages is in the worker (not queued for a stream,
not taken by one and waiting for its ack), and either

* offsets after the committed one were acked: the message at the committed
  offset is lost to Faust (skipped while the worker resumed its streams),
  and the corrected commit rule of :mod:`streams.faust_consumer` refuses to
  jump over it. A partition's messages reach its streams in order, so this
  is never a transient state; the guard acts at the next check; or
* the whole worker is idle (no batch in process; or, for a worker that
  does not say, no message in it) and neither the committed nor the read
  offset has moved for ``stall_after_s``: its fetching stopped, or Faust
  lost messages it still counts as taken (those are dropped from its books
  at the seek).

A partition merely waiting behind other partitions' backlog is neither.
Seeking the partition back to its committed offset reads the message
again; the messages after it are read twice, which the processors absorb
(deterministic ids, per-agent dedupe, keyed upserts).

A partition that stays stalled after ``max_reseeks`` seeks crashes the
worker with a message naming it: a process supervisor restarts it, and a
fresh consumer starts from the committed offsets.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass, field
from typing import Callable

import faust
from faust import Service

from streams.faust_consumer import unacked_head
from streams.metrics import PARTITION_RESEEKS
from streams.watchdog import GuardClock, Watch
from streams.worker_books import in_worker, orphans, snapshot

log = logging.getLogger(__name__)
SEEK_TIMEOUT_S = 30.0
# A strict-order seek queues on the consumer's thread behind its fetch and
# its commits, which wait for an absent broker up to aiokafka's 40 s request
# timeout: past this, the stage is stuck, not waiting (streams/runtime.py).
ORDER_SEEK_TIMEOUT_S = 120.0


@dataclass
class StallDetector:
    """The decision, kept apart from Faust so it can be tested alone."""

    stall_after_s: float
    max_reseeks: int = 3
    lost_after_s: float = 0.0  # how long a lost head message is watched before the seek
    _watch: dict = field(default_factory=dict)  # tp -> (what was seen, since when)
    _seeks: dict = field(default_factory=dict)  # tp -> (committed offset, seeks made at it)

    def check(self, tp, now: float, *, committed: int | None, end: int | None, read: int | None,
              lost: bool, idle: bool) -> str:
        """``ok``, ``reseek`` or ``give_up`` for one partition at ``now``.
        ``lost``: offsets after the committed one are acked and the message
        at it is nowhere in the worker; ``idle``: no message of any partition
        is in the worker."""
        seeks = self._seeks.get(tp)
        if seeks is not None and seeks[0] != committed:
            del self._seeks[tp]  # the commit moved on: recovered
            seeks = None
        if committed is None or end is None or committed >= end or not (lost or idle):
            self._watch.pop(tp, None)
            return "ok"
        # an idle partition must also not move for the window; a lost message
        # is lost however much the partition reads after it
        seen = ("lost", committed) if lost else ("idle", committed, read)
        watch = self._watch.get(tp)
        if watch is None or watch[0] != seen:
            self._watch[tp] = (seen, now)
            return "ok"
        count = seeks[1] if seeks else 0
        # a first seek for a lost message is quick; after a seek the partition
        # gets the full window to read the message again
        if now - watch[1] < (self.lost_after_s if lost and not count else self.stall_after_s):
            return "ok"
        if count >= self.max_reseeks:
            return "give_up"
        self._seeks[tp] = (committed, count + 1)
        self._watch[tp] = (seen, now)
        return "reseek"


@dataclass
class Stillness:
    """Which input partitions have stopped: each has lag (its committed offset
    behind its end) and neither its committed nor its read offset has moved
    for ``after_s``, whatever the worker says it is doing. The guard does not
    seek for that alone (a batch may be in process, or messages queued), but
    names them and says what every task of the worker is waiting on, once per
    ``after_s``. A worker went silent like this in CI and the soak with one
    partition stopped while others moved, and its log held nothing else."""

    after_s: float
    _seen: dict = field(default_factory=dict)  # tp -> (its offsets, since when unchanged with lag)
    _reported: float | None = None

    def check(self, now: float, offsets: dict, lagging: set) -> list:
        """The still partitions when a report is due at ``now``, else [].
        ``offsets``: every input partition's (committed, read); ``lagging``:
        those behind their end."""
        for tp, seen in offsets.items():
            before = self._seen.get(tp)
            if tp not in lagging or before is None or before[0] != seen:
                self._seen[tp] = (seen, now)
        for tp in set(self._seen) - set(offsets):
            del self._seen[tp]  # no longer assigned
        still = sorted((tp for tp in lagging if tp in offsets and now - self._seen[tp][1] >= self.after_s),
                       key=lambda tp: (tp.topic, tp.partition))
        if not still:
            self._reported = None
            return []
        if self._reported is not None and now - self._reported < self.after_s:
            return []
        self._reported = now
        return still


def register(app: faust.App, *, interval_s: float, stall_after_s: float, max_reseeks: int = 3,
             busy: Callable[[], bool] | None = None) -> StallDetector:
    """``busy``: whether a batch is being processed (``Runtime.busy``). With
    it, a worker is idle when no batch is in process, whatever Faust's books
    hold; without it, when no message is in the worker."""
    # a lost message is acted on at the check after the one that saw it
    detector = StallDetector(stall_after_s, max_reseeks, lost_after_s=min(interval_s, stall_after_s))
    stillness = Stillness(3 * stall_after_s)
    clock = GuardClock()

    @app.service
    class StallWatch(Service):
        """Stacks in the log when the loop or the guard stops
        (streams/watchdog.py), and the snapshot on demand."""

        watch: Watch | None = None

        async def on_start(self) -> None:
            # kill -USR1 <worker pid>: the snapshot in the log, guard or no
            # guard (the integration tests ask for it when a wait times out).
            app.loop.add_signal_handler(signal.SIGUSR1, lambda: log.warning(
                "stall guard: %s", snapshot(app, busy, 0, " (asked by SIGUSR1)")))
            if interval_s > 0:
                self.watch = Watch(app.loop, after_s=max(stillness.after_s, 3 * interval_s), clock=clock,
                                   report=lambda stuck: snapshot(app, busy, stuck, " (the stall guard is stuck)"))
                self.watch.start()

        async def on_stop(self) -> None:
            app.loop.remove_signal_handler(signal.SIGUSR1)
            if self.watch is not None:
                self.watch.stop()

    if interval_s <= 0:
        return detector

    @app.timer(interval_s, on_leader=False)
    async def stall_guard() -> None:
        clock.start(app.loop.time())
        try:
            await check()
        finally:
            clock.finish(app.loop.time())

    async def check() -> None:
        consumer = app.consumer
        tps = [tp for tp in consumer.assignment()
               if app.topics.acks_enabled_for(tp.topic) and not consumer._is_changelog_tp(tp)]
        now = app.loop.time()
        # Checked before anything that can wait or return early: a worker
        # stuck in a rebalance, with its flow stopped, or with a consumer
        # thread that no longer answers, is still too.
        offsets = {tp: (consumer._committed_offset.get(tp), consumer._read_offset.get(tp)) for tp in tps}
        lagging = {tp for tp in tps if (c := offsets[tp][0]) is not None
                   and (e := consumer.highwater(tp)) is not None and c < e}
        waiting_on = ("rebalancing" if app.rebalancing else "flow stopped" if not consumer.flow_active
                      else "recovering" if not app.tables.recovery.completed.is_set() else "")
        still = stillness.check(now, offsets, lagging)
        if still:
            where = ", ".join(f"{tp.topic}[{tp.partition}] (committed {offsets[tp][0]}, read {offsets[tp][1]}, "
                              f"end {consumer.highwater(tp)})" for tp in still)
            log.warning("stall guard: %s", snapshot(app, busy, stillness.after_s, f" at {where}" + (
                f"; the guard waits: {waiting_on}" if waiting_on else "")))
        if waiting_on:
            return
        unknown = [tp for tp in tps if consumer.highwater(tp) is None]
        try:
            ends = dict(await asyncio.wait_for(consumer.highwaters(*unknown), SEEK_TIMEOUT_S)) if unknown else {}
        except asyncio.TimeoutError:
            # A broker away can hold the request that long (aiokafka waits
            # 40 s): say what every task waits on, and check again next time
            # rather than wait here for ever.
            log.warning("stall guard: %s", snapshot(app, busy, SEEK_TIMEOUT_S,
                                                    " (the consumer thread did not answer a highwater request)"))
            return
        lowest = in_worker(app)
        # Messages Faust still counts as in the worker while no batch is in
        # process were dropped on the way (seen in CI and in B8 under load):
        # the worker is idle all the same.
        idle = not lowest or (busy is not None and not busy())
        for tp in tps:
            committed = consumer._committed_offset.get(tp)
            end = consumer.highwater(tp)
            end = ends.get(tp) if end is None else end
            # messages reach the streams in offset order, so acks after the
            # committed offset with that message nowhere in the worker mean it was lost
            lost = unacked_head(consumer, tp) is not None and (tp not in lowest or lowest[tp] > committed)
            verdict = detector.check(tp, now, committed=committed, end=end, read=consumer._read_offset.get(tp),
                                     lost=lost, idle=idle)
            if verdict == "reseek":
                ahead = sorted(consumer._acked.get(tp) or [])[:5]
                dropped = orphans(app, tp, committed) if idle else []
                log.warning("stall guard: %s[%d] committed %s, read %s, end %s, %s%s: seeking back to %s",
                            tp.topic, tp.partition, committed, consumer._read_offset.get(tp), end,
                            f"acked ahead {ahead}, the message at {committed} lost" if lost
                            else f"the worker idle for {stall_after_s:.0f}s",
                            f", {len(dropped)} messages taken and never acked (from {min(m.offset for m in dropped)})"
                            if dropped else "", committed)
                for m in dropped:
                    consumer._unacked_messages.discard(m)
                if idle and tp not in consumer._get_active_partitions():
                    # Left out of Faust's fetch set (paused, and never resumed
                    # after the worker's start): a seek alone would not read it.
                    log.warning("stall guard: %s[%d] was not being fetched (paused): resuming it",
                                tp.topic, tp.partition)
                    consumer.resume_partitions([tp])
                PARTITION_RESEEKS.labels(tp.topic).inc()
                try:
                    await asyncio.wait_for(consumer.seek(tp, committed), SEEK_TIMEOUT_S)
                except asyncio.TimeoutError:
                    # A guard stuck in a seek would never check again: give
                    # up as after too many seeks, and let the supervisor restart.
                    log.error("stall guard: %s", snapshot(app, busy, SEEK_TIMEOUT_S, " (a seek did not finish)"))
                    await app.crash(RuntimeError(f"stall guard: seeking {tp.topic}[{tp.partition}] back to "
                                                 f"{committed} did not finish in {SEEK_TIMEOUT_S:.0f}s"))
                    return
            elif verdict == "give_up":
                await app.crash(RuntimeError(
                    f"input partition {tp.topic}[{tp.partition}] stays at committed offset {committed} "
                    f"(end {end}) after {max_reseeks} seeks; restarting the worker re-reads it"))
                return

    return detector
