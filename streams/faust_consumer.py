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

It also moves Faust's seek onto the consumer's thread (see ``_seek``), and
keeps Faust's stall warnings quiet after an idle spell (``ConsumerThread``).
"""

from __future__ import annotations

from typing import Optional

from aiokafka import TopicPartition
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP


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


class Consumer(aiokafka_driver.Consumer):
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
    thread._ensure_consumer().seek(partition, offset)


def unacked_head(consumer, tp: TP) -> Optional[int]:
    """The committed offset of ``tp`` when acked offsets wait behind it (the
    message there was dropped before its stream saw it), else None."""
    acked = consumer._acked.get(tp)  # defaultdicts: .get does not add the tp
    committed = consumer._committed_offset.get(tp)
    if acked and committed is not None and min(acked) > committed:
        return committed
    return None
