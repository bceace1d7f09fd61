"""The corrected commit rule and the stall guard's decisions."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

from faust.types import TP
from intervaltree import IntervalTree

from processors.stall_guard import StallDetector
from streams.faust_consumer import Consumer, unacked_head

T = TP("sim.posts.v1", 1)


def consumer_state(committed, acked, gap=()):
    state = SimpleNamespace(_acked=defaultdict(list), _acked_index=defaultdict(set), _gap=defaultdict(IntervalTree),
                            _committed_offset=defaultdict(lambda: None))
    state._committed_offset[T] = committed
    state._acked[T] = list(acked)
    state._acked_index[T] = set(acked)
    for begin, end in gap:
        state._gap[T].addi(begin, end)
    return state


def new_offset(state):
    return Consumer._new_offset(state, T)


def test_commit_never_jumps_over_the_message_at_the_committed_offset():
    # 2511 is the next message to read; it was never acked, 2512.. were.
    state = consumer_state(2511, range(2512, 2528))
    assert new_offset(state) is None
    assert unacked_head(state, T) == 2511
    # Once it is read again and acked, the whole run commits.
    state._acked[T].append(2511)
    assert new_offset(state) == 2528
    assert state._acked[T] == []


def test_commit_advances_over_contiguous_acks_and_stops_at_a_hole():
    state = consumer_state(10, [10, 11, 12, 14, 15])
    assert new_offset(state) == 13
    assert state._acked[T] == [14, 15]


def test_known_gaps_count_as_acked():
    # 11 is a gap Faust recorded (no message there): the commit passes it.
    state = consumer_state(10, [10, 12], gap=[(11, 12)])
    assert new_offset(state) == 13


def test_first_commit_of_a_new_group_has_no_head_to_check():
    state = consumer_state(None, [0, 1, 2])
    assert new_offset(state) == 3
    assert new_offset(consumer_state(5, [])) is None


def test_detector_waits_for_the_stall_window_then_reseeks_then_gives_up():
    d = StallDetector(stall_after_s=20, max_reseeks=2)
    args = dict(committed=100, end=120, read=99, busy=False, acked_ahead=True, worker_idle=False)
    assert d.check(T, 0, **args) == "ok"  # first sighting starts the clock
    assert d.check(T, 19, **args) == "ok"
    assert d.check(T, 20, **args) == "reseek"
    # the seek moves the read offset back to the committed one: a new key, same commit
    args["read"] = 100
    assert d.check(T, 21, **args) == "ok"
    assert d.check(T, 41, **args) == "reseek"
    assert d.check(T, 61, **args) == "give_up"


def test_progress_busy_or_caught_up_partitions_are_never_touched():
    d = StallDetector(stall_after_s=10)
    lost = dict(acked_ahead=True, worker_idle=False)
    assert d.check(T, 0, committed=100, end=120, read=110, busy=False, **lost) == "ok"
    assert d.check(T, 30, committed=105, end=120, read=110, busy=False, **lost) == "ok"  # the commit moved
    assert d.check(T, 60, committed=105, end=120, read=110, busy=True, **lost) == "ok"  # a batch in flight
    assert d.check(T, 200, committed=105, end=120, read=110, busy=False, **lost) == "ok"  # the clock restarted
    assert d.check(T, 300, committed=120, end=120, read=119, busy=False, **lost) == "ok"  # caught up
    assert d.check(T, 900, committed=120, end=120, read=119, busy=False, **lost) == "ok"
    assert d.check(T, 0, committed=None, end=120, read=None, busy=False, **lost) == "ok"  # nothing committed yet


def test_a_partition_waiting_behind_other_backlog_is_left_alone():
    # Nothing acked ahead, and the worker busy elsewhere: it is waiting its turn.
    d = StallDetector(stall_after_s=10)
    waiting = dict(committed=100, end=500, read=99, busy=False, acked_ahead=False, worker_idle=False)
    assert [d.check(T, t, **waiting) for t in (0, 10, 100, 1000)] == ["ok"] * 4
    # The same partition with the worker idle has stopped fetching.
    idle = {**waiting, "worker_idle": True}
    assert [d.check(T, t, **idle) for t in (1000, 1010)] == ["ok", "reseek"]


def test_recovery_after_a_reseek_resets_the_count():
    d = StallDetector(stall_after_s=10, max_reseeks=1)
    lost = dict(busy=False, acked_ahead=True, worker_idle=False)
    d.check(T, 0, committed=100, end=120, read=99, **lost)
    assert d.check(T, 10, committed=100, end=120, read=99, **lost) == "reseek"
    assert d.check(T, 12, committed=120, end=130, read=125, **lost) == "ok"  # it moved on
    d.check(T, 13, committed=120, end=130, read=125, **lost)
    assert d.check(T, 23, committed=120, end=130, read=125, **lost) == "reseek"  # a new stall, a fresh count
