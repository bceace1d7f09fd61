"""The seek fence: a seek made while Faust's fetch loop hands a message over,
or before it hands over the rest of a fetch, still reads from its target."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP

from streams.faust_consumer import Consumer
from streams.seek_fence import KEEP, SeekFence

T = TP("sim.agent-log.v1", 1)
U = TP("sim.agent-log.v1", 2)


class Msg:
    def __init__(self, tp, offset):
        self.tp, self.offset = tp, offset


def consumer(monkeypatch, fetches):
    """A Murmur consumer whose parent fetch hands over ``fetches`` (lists of
    (tp, offset)), one per ``getmany`` call; the fence's counts are taken
    when each fetch hands over its records, as on the consumer's thread."""
    c = Consumer.__new__(Consumer)
    c._fence, c._fetch_stamps = SeekFence(), {}
    c._read_offset = defaultdict(lambda: None)
    pending = list(fetches)

    async def parent_getmany(self, timeout):
        records = pending.pop(0) if pending else []
        self._fetch_stamps = self._fence.snapshot()
        for tp, offset in records:
            yield tp, Msg(tp, offset)

    monkeypatch.setattr(aiokafka_driver.Consumer, "getmany", parent_getmany, raising=False)
    return c


def seek(c, tp, offset):
    # what Consumer.seek does: counted with the consumer's seek, then Faust
    # sets the read offset
    c._fence.seeking({tp: offset})
    c._read_offset[tp] = offset


async def drain(c, rounds, during=None):
    """Faust 0.15.3's fetch loop (``Consumer._drain_messages``), its read
    offset rule as it is: ``during(message)`` runs inside the hand-off."""
    delivered = []
    for _ in range(rounds):
        async for tp, message in c.getmany(timeout=1.0):
            r_offset = c._read_offset[tp]
            if r_offset is None or message.offset >= r_offset:
                if during is not None:
                    during(message)
                await asyncio.sleep(0)
                delivered.append((tp, message.offset))
                c._read_offset[tp] = message.offset
    return delivered


def test_a_seek_during_a_hand_off_is_not_undone_by_its_read_offset(monkeypatch):
    # The CI failure: read 438, the stall guard seeks back to the lost 147
    # while 438 waits in a full stream buffer.
    c = consumer(monkeypatch, [[(T, 438)], [(T, 147), (T, 148)]])
    c._read_offset[T] = 437
    delivered = asyncio.run(drain(c, 2, during=lambda m: seek(c, T, 147) if m.offset == 438 else None))
    # without the fence 438's read offset stays, and 147, 148 are dropped
    assert delivered == [(T, 438), (T, 147), (T, 148)]
    assert c._read_offset[T] == 148


def test_records_fetched_before_a_seek_are_not_handed_over_after_it(monkeypatch):
    c = consumer(monkeypatch, [[(T, 436), (U, 20), (T, 437), (T, 438)], [(T, 147)]])
    delivered = asyncio.run(drain(c, 2, during=lambda m: seek(c, T, 147) if m.offset == 436 else None))
    # 437 and 438 (read before the seek) wait for the re-read; the other
    # partition's records go through
    assert delivered == [(T, 436), (U, 20), (T, 147)]
    assert c._read_offset[T] == 147 and c._read_offset[U] == 20


def test_without_seeks_the_read_offsets_advance_as_faust_sets_them(monkeypatch):
    c = consumer(monkeypatch, [[(T, 1), (U, 1), (T, 2)], [(T, 3)]])
    assert asyncio.run(drain(c, 2)) == [(T, 1), (U, 1), (T, 2), (T, 3)]
    assert c._read_offset[T] == 3


def test_a_seek_before_the_fetch_leaves_its_records_alone(monkeypatch):
    c = consumer(monkeypatch, [[(T, 5), (T, 6)]])
    seek(c, T, 5)
    assert asyncio.run(drain(c, 1)) == [(T, 5), (T, 6)]


@pytest.mark.parametrize("sought_after_fetch", [True, False])
def test_fence_decisions(sought_after_fetch):
    fence = SeekFence()
    fence.seeking({T: 10})
    stamps = fence.snapshot()
    if sought_after_fetch:
        fence.seeking({T: 3})
    assert fence.stale(stamps, T) is sought_after_fetch
    assert fence.restore(stamps, T) == (3 if sought_after_fetch else KEEP)
    assert not fence.stale(stamps, U) and fence.restore(stamps, U) is KEEP
