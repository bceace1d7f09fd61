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

It also moves Faust's seek onto the consumer's thread (see ``_seek``).
"""

from __future__ import annotations

from typing import Optional

from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP


class Consumer(aiokafka_driver.Consumer):
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
