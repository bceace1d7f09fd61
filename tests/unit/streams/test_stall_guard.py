"""The corrected commit rule and the stall guard's decisions."""

from __future__ import annotations

from collections import defaultdict

from faust.types import TP
from intervaltree import IntervalTree

from streams.seek_fence import SeekFence
from streams.stall_guard import StallDetector
from streams.faust_consumer import Consumer, unacked_head

T = TP("sim.posts.v1", 1)


def consumer_state(committed, acked, gap=()):
    # The commit bookkeeping of a Faust consumer, without its services.
    state = Consumer.__new__(Consumer)
    state.__dict__.update(_acked=defaultdict(list), _acked_index=defaultdict(set), _gap=defaultdict(IntervalTree),
                          _committed_offset=defaultdict(lambda: None))
    state._committed_offset[T] = committed
    state._acked[T] = list(acked)
    state._acked_index[T] = set(acked)
    for begin, end in gap:
        state._gap[T].addi(begin, end)
    return state


def new_offset(state):
    return state._new_offset(T)


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
    # a gap that starts at the committed offset itself is no lost message either
    assert new_offset(consumer_state(10, [12], gap=[(10, 12)])) == 13


def test_first_commit_of_a_new_group_has_no_head_to_check():
    state = consumer_state(None, [0, 1, 2])
    assert new_offset(state) == 3
    assert new_offset(consumer_state(5, [])) is None


def test_a_lost_message_is_sought_back_at_the_next_check_however_the_partition_reads_on():
    d = StallDetector(stall_after_s=20, max_reseeks=2, lost_after_s=5)
    assert d.check(T, 0, committed=100, end=120, read=110, lost=True, idle=False) == "ok"  # first sighting
    assert d.check(T, 4, committed=100, end=130, read=125, lost=True, idle=False) == "ok"  # reading on
    assert d.check(T, 5, committed=100, end=140, read=135, lost=True, idle=False) == "reseek"
    # after a seek the partition gets the full window to read it again
    assert d.check(T, 10, committed=100, end=140, read=100, lost=True, idle=False) == "ok"
    assert d.check(T, 24.9, committed=100, end=140, read=110, lost=True, idle=False) == "ok"
    assert d.check(T, 25, committed=100, end=140, read=110, lost=True, idle=False) == "reseek"
    # back in the worker (not lost), then lost again: still the same commit, so the count goes on
    assert d.check(T, 26, committed=100, end=140, read=100, lost=False, idle=False) == "ok"
    assert d.check(T, 27, committed=100, end=140, read=105, lost=True, idle=False) == "ok"
    assert d.check(T, 47, committed=100, end=140, read=110, lost=True, idle=False) == "give_up"


def test_an_idle_worker_partition_with_lag_waits_the_stall_window():
    d = StallDetector(stall_after_s=20, max_reseeks=1, lost_after_s=5)
    idle = dict(committed=100, end=500, read=99, lost=False, idle=True)
    assert [d.check(T, t, **idle) for t in (0, 10, 19.9, 20)] == ["ok", "ok", "ok", "reseek"]
    assert d.check(T, 21, **{**idle, "read": 100}) == "ok"  # the seek moved the read offset: a new window
    assert d.check(T, 41, **{**idle, "read": 100}) == "give_up"  # same commit, one seek already made


def test_progress_busy_or_caught_up_partitions_are_never_touched():
    d = StallDetector(stall_after_s=10, lost_after_s=5)
    assert d.check(T, 0, committed=100, end=120, read=110, lost=False, idle=False) == "ok"  # in the worker
    assert d.check(T, 100, committed=100, end=120, read=110, lost=False, idle=False) == "ok"
    # waiting behind other partitions' backlog: nothing lost, the worker busy
    assert [d.check(T, t, committed=100, end=900, read=99, lost=False, idle=False) for t in (0, 50, 500)] == ["ok"] * 3
    assert d.check(T, 300, committed=120, end=120, read=119, lost=False, idle=True) == "ok"  # caught up
    assert d.check(T, 900, committed=120, end=120, read=119, lost=False, idle=True) == "ok"
    assert d.check(T, 0, committed=None, end=120, read=None, lost=False, idle=True) == "ok"  # nothing committed yet


def test_recovery_after_a_reseek_resets_the_count():
    d = StallDetector(stall_after_s=10, max_reseeks=1, lost_after_s=5)
    d.check(T, 0, committed=100, end=120, read=99, lost=True, idle=False)
    assert d.check(T, 5, committed=100, end=120, read=99, lost=True, idle=False) == "reseek"
    assert d.check(T, 6, committed=120, end=130, read=125, lost=False, idle=False) == "ok"  # it moved on
    d.check(T, 7, committed=120, end=130, read=125, lost=True, idle=False)
    assert d.check(T, 12, committed=120, end=130, read=125, lost=True, idle=False) == "reseek"  # a fresh count


def test_a_still_partition_is_reported_once_per_window_and_movement_resets_it():
    from streams.stall_guard import Stillness

    s = Stillness(60)
    U = TP("sim.posts.v1", 2)
    still = {T: (5, 9), U: (1, 1)}
    assert s.check(0, still, lagging={T, U}) == []
    assert s.check(59, still, lagging={T, U}) == []
    assert s.check(60, still, lagging={T, U}) == [T, U]  # a minute without either moving
    assert s.check(100, still, lagging={T, U}) == []  # reported: not again within the window
    # U reads on while T stays: T alone is still, reported when the window is up
    assert s.check(121, {T: (5, 9), U: (1, 2)}, lagging={T, U}) == [T]
    assert s.check(130, {T: (5, 10), U: (1, 2)}, lagging={T, U}) == []  # T read on: a new window
    assert s.check(195, {T: (5, 10), U: (1, 2)}, lagging=set()) == []  # caught up: nothing to say
    assert s.check(250, {T: (5, 10), U: (1, 2)}, lagging={T, U}) == []  # lag again: its window starts now
    assert s.check(310, {T: (5, 10), U: (1, 2)}, lagging={T}) == [T]
    # T no longer assigned; U unchanged since it was last seen caught up (310)
    assert s.check(400, {U: (1, 2)}, lagging={U}) == [U]
    assert s.check(401, {U: (1, 2)}, lagging={U}) == []


def test_the_snapshot_says_flow_queues_and_what_each_task_awaits():
    import asyncio
    from types import SimpleNamespace

    from streams.worker_books import snapshot

    async def stuck_in_a_flush():
        await asyncio.sleep(3600)

    async def main():
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(stuck_in_a_flush(), name="verdict-batch")
        await asyncio.sleep(0)
        fence = SeekFence()
        fence.seeking({T: 40})
        consumer = SimpleNamespace(flow_active=True, _unacked_messages=set(), assignment=lambda: {T},
                                   _get_active_partitions=lambda: set(), _is_changelog_tp=lambda tp: False,
                                   _acked={T: [44, 42, 43]}, _committed_offset={T: 40}, _read_offset={T: 44},
                                   highwater=lambda tp: 50, _fence=fence, _fetch_stamps={})
        app = SimpleNamespace(consumer=consumer, loop=loop, flow_control=SimpleNamespace(is_active=lambda: False),
                              topics=SimpleNamespace(_tp_index={}, acks_enabled_for=lambda topic: True))
        try:
            return snapshot(app, lambda: True, 60)
        finally:
            task.cancel()

    text = asyncio.run(main())
    assert "still for 60s: flow active, flow control suspended, batch in process True" in text
    assert "0 messages queued" in text and "paused: sim.posts.v1[1]" in text
    assert "verdict-batch: stuck_in_a_flush (test_stall_guard.py:" in text
    # each input partition's books: here the message at 40 is missing and 42..44 wait behind it
    assert ("sim.posts.v1[1]: committed 40, read 44, end 50, acked 42..44 (3), in worker from None, "
            "position None, not fetched, seeks 1 (last fetch saw 0, target 40)") in text
