"""Faust's Kafka consumer with one commit rule corrected.

Faust keeps ``_committed_offset[tp]`` as Kafka does: the offset of the
*next* message to read. Its ``Consumer._new_offset`` (faust-streaming
0.15.3) nevertheless lets the acked offsets start one past it ("a gap at the
head" is only refused when it is wider than one message), so when the message
at the committed offset was never acked, the commit jumps over it and it is
lost for good.

That happens after a restart under load: messages fetched while the worker
resumes its streams are skipped by the stream (flow control still
suspended) and their re-fetch after the seek is dropped as "already read".
The checkpoint restore test caught it (a post of the restarted run never
scored; the same post was there after restoring). With this rule the commit
stops at the lost message instead; :mod:`streams.stall_guard` then sees a
partition whose commit no longer moves and seeks it back, so the message is
read again.

It also moves Faust's seek onto the consumer's thread (see ``_seek``), keeps
what its fetch loop read before a seek from undoing the seek
(:mod:`streams.seek_fence`), and keeps Faust's stall warnings quiet after an
idle spell (``ConsumerThread``).
"""

from __future__ import annotations

import logging
from typing import AsyncIterator, Mapping, Optional, Set, Tuple

from aiokafka import TopicPartition
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP, Message
from prometheus_client import Counter

from streams.seek_fence import KEEP, SeekFence

log = logging.getLogger(__name__)
# Declared here, not in streams/metrics.py: that module reaches up to the app
# and the topology, which load this consumer (an import circle).
SKIPPED_UNPROCESSED = Counter(
    "murmur_stream_skips_refused_total",
    "Messages Faust's stream skipped unprocessed and acked anyway; the ack is not counted, so they are read again",
    ["topic"],
)
GAPS_REFUSED = Counter(
    "murmur_stream_gaps_refused_total",
    "Offsets of a gapless input Faust saw pass unhanded and would count as acked (a gap); they are read again",
    ["topic"],
)


def busy_for(now: float, caught_up_at: Optional[float], started: float) -> float:
    """Seconds a partition has had messages waiting: since the last check
    that found it caught up (position at the high watermark), or since the
    worker started if none did."""
    return now - (caught_up_at if caught_up_at is not None else started)


class ConsumerThread(aiokafka_driver.AIOKafkaConsumerThread):
    """Faust's stall warnings without the false alarm after an idle spell.

    Faust (0.15.3) warns "Has not committed TP ... (last commit 5.7 minutes
    ago)" or "Stream stopped processing" when a partition has messages
    waiting and its last commit, or the last event its stream took, is older
    than the timeout. After a quiet spell longer than the timeout both are
    old by definition, so the first check after traffic resumes, in the
    second before the new messages are read, warns about a partition that
    is working. Reproduced: bench/idle_then_busy.py. The clocks here start
    when messages began to wait, so only a partition that has had work
    waiting for the whole timeout is reported; Faust's fetch checks still run.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._caught_up_at: dict[TP, float] = {}

    def verify_event_path(self, now: float, tp: TP) -> None:
        state = self._ensure_consumer()._fetcher._subscriptions.subscription.assignment.state_value(
            TopicPartition(tp.topic, tp.partition))
        if state is None or state.highwater is None or state.position is None or state.highwater <= state.position:
            self._caught_up_at[tp] = now
        elif busy_for(now, self._caught_up_at.get(tp), self.time_started) < min(
                self.tp_stream_timeout_secs, self.tp_commit_timeout_secs):
            self._verify_aiokafka_event_path(now, tp)  # fetch checks only: work began waiting just now
            return None
        return super().verify_event_path(now, tp)

    # The seek fence (streams/seek_fence.py). Every seek and every fetch
    # runs on this thread's loop; each one's count or snapshot is taken in
    # the same step (no await between) as the consumer's seek, or as the
    # fetcher hands over its records.

    async def _fetch_records(self, consumer, active_partitions: Set[TP], timeout: Optional[float] = None,
                             max_records: Optional[int] = None):
        records = await super()._fetch_records(consumer, active_partitions, timeout=timeout,
                                               max_records=max_records)
        self.consumer._fetch_stamps = self.consumer._fence.snapshot()
        return records

    async def _seek_wait(self, consumer, partitions: Mapping[TP, int]) -> None:
        # Faust's ``_seek_wait`` seeks them all before its first await
        self.consumer._fence.seeking({tp: offset if offset > 0 else None for tp, offset in partitions.items()})
        await super()._seek_wait(consumer, partitions)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        return await self.call_thread(self._seek_to_committed, self._ensure_consumer())

    async def _seek_to_committed(self, consumer) -> Mapping[TP, int]:
        # aiokafka's ``seek_to_committed``, with each seek counted in its step
        committed = {}
        for tp in consumer.assignment():
            offset = committed[tp] = await consumer.committed(tp)
            if offset and offset > 0:
                self.consumer._fence.seeking({tp: offset})  # perform_seek sets it as the read offset
                consumer.seek(tp, offset)
        return committed


class Consumer(aiokafka_driver.Consumer):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._fence = SeekFence()
        self._fetch_stamps: dict = {}  # the fence's counts when the last fetch took its records
        self._skips_logged: dict = {}  # tp -> generations whose skipped messages were logged (once each)

    async def getmany(self, timeout: float) -> AsyncIterator[Tuple[TP, Message]]:
        # Faust's fetch loop takes one message from here, hands it to the
        # streams, sets its read offset, then asks for the next: the code
        # after the ``yield`` runs once the read offset of ``last`` is written.
        last = None
        try:
            async for tp, message in super().getmany(timeout):
                self._restore_read_offset(last)
                last = None
                if self._fence.stale(self._fetch_stamps, tp):
                    continue  # fetched before a seek of its partition, which reads it again
                last = tp
                yield tp, message
        finally:
            self._restore_read_offset(last)

    def _restore_read_offset(self, tp: Optional[TP]) -> None:
        target = KEEP if tp is None else self._fence.restore(self._fetch_stamps, tp)
        if target is KEEP or self._read_offset.get(tp) == target:
            return
        log.info("%s[%d] was sought while a message fetched before the seek was handed over: "
                 "its read offset %s is put back to the seek's %s",
                 tp.topic, tp.partition, self._read_offset.get(tp), target)
        self._read_offset[tp] = target

    def ack(self, message: Message) -> bool:
        # Faust's stream (0.15.3, ``Stream._py_aiter``) skips a message it
        # takes while flow control is off or that was fetched in an earlier
        # generation (a rebalance in between), and then acks it like one it
        # processed: the commit moves past a message no stage saw, and it is
        # lost for good. (The two-worker cluster test lost 32 of 1,188
        # memories with every input committed to its end; this is one way
        # that happens, not shown to be that one.) The stream marks each message it processes as
        # tracked first; one it skipped never is. Not counting that ack
        # leaves the message unacked at its offset: the commit stops there
        # (``_new_offset``), and the stall guard or the stage's strict order
        # reads it again.
        if not message.tracked and self.app.topics.acks_enabled_for(message.topic):
            seen = self._skips_logged.setdefault(message.tp, set())
            if self.app.consumer_generation_id not in seen:
                seen.add(self.app.consumer_generation_id)
                log.info("%s[%d]: the stream skipped the message at %d without processing it (flow control "
                         "off, or fetched before a rebalance): not counted as processed, it is read again",
                         message.topic, message.partition, message.offset)
            SKIPPED_UNPROCESSED.labels(message.topic).inc()
            return False
        return super().ack(message)

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        # Faust's fetch loop (``_drain_messages``) records a gap when the
        # message it hands over is more than one past the last one it
        # handed, and counts the offsets between as acked: on a compacted or
        # transactional topic they hold no message. On a gapless input
        # (``App.gapless_topics``: every offset holds a message) they are
        # messages that never reached a stream, for instance fetched while
        # the worker resumed its streams and dropped because flow control
        # was still off, with the read offset moved over them. Counted as
        # acked, the commit passes them and they are lost for good. Not
        # counted, the commit stops at the first of them and it is read
        # again (the stall guard, or a stage's strict order). The message at
        # ``offset_to`` is the one being handed over: acked as usual.
        if tp.topic in getattr(self.app, "gapless_topics", ()):
            if offset_to - 1 >= offset_from:
                log.info("%s[%d]: offsets %d-%d passed without reaching a stream; Faust would count them as "
                         "acked (a gap): not counted, they are read again", tp.topic, tp.partition, offset_from,
                         offset_to - 1)
                GAPS_REFUSED.labels(tp.topic).inc(offset_to - offset_from)
            return
        await super()._add_gap(tp, offset_from, offset_to)

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def _new_offset(self, tp: TP) -> Optional[int]:
        # The fix: nothing before the committed offset is pending, so acks
        # that start after it leave a message unacked there: commit nothing.
        # (A gap Faust recorded counts as acked, but Faust starts its gaps one
        # past the committed offset; Murmur's inputs are not transactional,
        # so every offset holds a message and no gap starts there.)
        if unacked_head(self, tp) is not None and not self._gap[tp].overlaps(self._committed_offset[tp]):
            return None
        return super()._new_offset(tp)

    async def _seek(self, partition: TP, offset: int) -> None:
        # Faust (0.15.3) calls aiokafka's seek from the app's event loop, but
        # the aiokafka consumer lives on its own thread and loop, and its seek
        # completes that loop's futures (the fetcher's wake-up, the position
        # waiter). From another thread that is not safe: the fetcher can sleep
        # on a future nobody wakes, and the worker stops reading every
        # partition (asyncio's debug mode raises "Non-thread-safe operation").
        # So the seek runs on the consumer's own thread.
        await self._thread.call_thread(_seek_on_consumer_thread, self._thread, partition, offset)


class Transport(aiokafka_driver.Transport):
    Consumer = Consumer


async def _seek_on_consumer_thread(thread, partition: TP, offset: int) -> None:
    thread.consumer._fence.seeking({partition: offset if offset else None})  # as Faust's seek sets it
    thread._ensure_consumer().seek(partition, offset)


def unacked_head(consumer, tp: TP) -> Optional[int]:
    """The committed offset of ``tp`` when acked offsets wait behind it (the
    message there was dropped before its stream saw it), else None."""
    acked = consumer._acked.get(tp)  # defaultdicts: .get does not add the tp
    committed = consumer._committed_offset.get(tp)
    if acked and committed is not None and min(acked) > committed:
        return committed
    return None
