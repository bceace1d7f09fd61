"""A message Faust's stream skipped unprocessed, or one that never reached a
stream (a gap on a gapless input), is not counted as acked, so the commit
stops at it and it is read again (streams/faust_consumer.py)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace

from faust.types import TP, ConsumerMessage
from intervaltree import IntervalTree

from streams.faust_consumer import Consumer, unacked_head

T = TP("memory.scored.v1", 2)


def consumer(committed: int, gapless: frozenset = frozenset({T.topic})) -> Consumer:
    # The ack and commit bookkeeping of a Faust consumer, without its services.
    c = Consumer.__new__(Consumer)
    c.__dict__.update(_acked=defaultdict(list), _acked_index=defaultdict(set), _gap=defaultdict(IntervalTree),
                      _committed_offset=defaultdict(lambda: None), _unacked_messages=set(), _n_acked=0,
                      _skips_logged={},
                      app=SimpleNamespace(topics=SimpleNamespace(acks_enabled_for=lambda topic: True),
                                          consumer_generation_id=3, gapless_topics=gapless))
    c._committed_offset[T] = committed
    return c


def message(offset: int, *, processed: bool) -> ConsumerMessage:
    m = ConsumerMessage(T.topic, T.partition, offset, 0.0, 0, None, b"k", b"v", None)
    m.tracked = processed  # what Faust's stream does before it processes a message; a skipped one never is
    m.incref()
    return m


def test_a_skipped_message_is_not_counted_and_the_commit_stops_at_it():
    c = consumer(100)
    for offset in range(100, 110):
        # Faust's stream skipped 103 (taken while flow control was off) and acked it all the same
        assert message(offset, processed=offset != 103).ack(c) is (offset != 103)
    assert sorted(c._acked[T]) == [100, 101, 102, 104, 105, 106, 107, 108, 109]
    assert c._new_offset(T) == 103  # the commit stops at the skipped message
    c._committed_offset[T] = 103
    assert c._new_offset(T) is None and unacked_head(c, T) == 103  # and stays there: the stall guard's cue
    assert message(103, processed=True).ack(c)  # read again and processed
    assert c._new_offset(T) == 110


def test_a_skipped_message_is_logged_once_a_generation():
    c = consumer(0)
    for offset in range(5):
        message(offset, processed=False).ack(c)
    assert c._skips_logged == {T: {3}}
    assert c._acked[T] == []


def handed_after_a_gap(c: Consumer) -> None:
    """What Faust's fetch loop does when the message it hands over is 105
    and the last one it handed was 100: 101-104 never reached a stream."""
    for offset in (100, 105):
        assert message(offset, processed=True).ack(c)
    asyncio.run(c._add_gap(T, 101, 105))


def test_offsets_that_never_reached_a_stream_of_a_gapless_input_are_not_counted():
    c = consumer(100)
    handed_after_a_gap(c)
    assert c._new_offset(T) == 101  # the commit stops at the first one, which is then read again
    c._committed_offset[T] = 101
    for offset in range(101, 105):
        assert message(offset, processed=True).ack(c)
    assert c._new_offset(T) == 106


def test_a_gap_of_a_compacted_input_counts_as_faust_counts_it():
    c = consumer(100, gapless=frozenset())
    handed_after_a_gap(c)
    assert c._new_offset(T) == 106  # compaction removed 101-104: nothing to wait for
