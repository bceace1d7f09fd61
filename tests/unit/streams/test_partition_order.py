"""Strict offset order per partition (streams/partition_order.py), without Kafka."""

from streams.partition_order import PartitionOrder

A, B = ("t", 0), ("t", 1)


def test_in_order_goes_through_and_a_gap_asks_one_seek_to_the_first_missing_offset():
    o = PartitionOrder()
    assert [o.admit(A, off, 10) for off in (10, 11, 12)] == [("process", None)] * 3
    assert o.admit(A, 14, 10) == ("seek", 13)  # 13 never arrived
    assert o.admit(A, 15, 10) == ("hold", None)  # already seeking: no second seek
    assert o.admit(B, 0, 0) == ("process", None)  # other partitions are not held up
    assert o.admit(A, 11, 10) == ("process", None)  # a redelivery after the seek: let through, no move
    assert o.admit(A, 13, 10) == ("process", None)  # the missing one, then on in order
    assert o.admit(A, 14, 10) == ("process", None)
    assert o.next[A] == 15 and A not in o.seeking


def test_the_committed_offset_is_where_a_partition_starts():
    o = PartitionOrder()
    assert o.admit(A, 7, 5) == ("seek", 5)  # 5 and 6 were skipped before the first batch
    assert o.admit(A, 5, 5) == ("process", None)
    assert o.admit(B, 3, None) == ("process", None) and o.next[B] == 4  # nothing committed yet: start here


def test_a_rebalance_starts_again_from_the_committed_offsets():
    o = PartitionOrder()
    o.reset_if(1)
    o.admit(A, 10, 10)
    o.admit(A, 12, 10)
    o.reset_if(2)
    assert o.admit(A, 40, 40) == ("process", None)  # another worker had it meanwhile


def test_a_seek_that_is_lost_is_asked_again_once_the_partition_moves():
    o = PartitionOrder()
    o.admit(A, 0, 0)
    assert o.admit(A, 2, 0) == ("seek", 1)
    assert o.admit(A, 1, 0) == ("process", None) and o.admit(A, 2, 0) == ("process", None)
    assert o.admit(A, 4, 0) == ("seek", 3)  # a new gap: a new seek


def test_only_the_ordered_topics_are_held():
    # A stage's compacted input (the simulations topic of the verdict stage)
    # has gaps of its own: it passes as Faust hands it over.
    from types import SimpleNamespace

    from faust.types import TP

    from streams.partition_order import in_order

    class Message:  # hashable, as Faust's are (its unacked set holds them)
        def __init__(self, topic, offset):
            self.tp, self.offset, self.acked = TP(topic, 0), offset, False

    def event(topic, offset):
        return SimpleNamespace(message=Message(topic, offset))

    consumer = SimpleNamespace(_committed_offset={TP("stances", 0): 0, TP("sims", 0): 0}, _unacked_messages=set())
    app = SimpleNamespace(consumer=consumer, consumer_generation_id=1)
    events = [event("stances", 0), event("sims", 5), event("stances", 2), event("sims", 9)]
    keep, seeks = in_order(app, PartitionOrder(), events, frozenset({"stances"}))
    assert [(e.message.tp.topic, e.message.offset) for e in keep] == [("stances", 0), ("sims", 5), ("sims", 9)]
    assert seeks == [(TP("stances", 0), 1)] and events[2].message.acked
