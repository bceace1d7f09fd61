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
