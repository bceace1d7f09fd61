"""What a Faust worker holds, read from its books: the messages queued for
its streams or taken and not acked, each input partition's offsets, and a
report of all that with the stack of every task and thread. The stall
guard decides from these (streams/stall_guard.py); the report is what a
still worker, a stuck seek, or ``kill -USR1`` writes to the log.

They read Faust's (0.15.3) private books: the consumer's ``_acked``,
``_committed_offset``, ``_read_offset`` and ``_unacked_messages``, the
channels' queues, and aiokafka's fetch positions.
"""

from __future__ import annotations

import asyncio
import io
from typing import Callable

import faust

from streams.watchdog import thread_stacks


def snapshot(app: faust.App, busy: Callable[[], bool] | None, still_s: float, why: str = "") -> str:
    """What a still worker is waiting on: its flow, its queues, and the
    stack of every asyncio task (a few frames each), on the app's loop and
    on the consumer's thread."""
    consumer = app.consumer
    out = io.StringIO()
    waiting = queued(app)
    active = consumer._get_active_partitions()
    out.write(f"{f'still for {still_s:.0f}s' if still_s else 'worker state'}{why}: flow {'active' if consumer.flow_active else 'suspended'}, "
              f"flow control {'active' if app.flow_control.is_active() else 'suspended'}, "
              f"batch in process {busy() if busy is not None else 'unknown'}, {len(waiting)} messages queued, "
              f"{sum(1 for m in list(consumer._unacked_messages) if not m.acked)} taken and unacked, "
              f"paused: {', '.join(sorted(f'{tp.topic}[{tp.partition}]' for tp in consumer.assignment() if tp not in active)) or 'none'}\n")
    out.write(partition_table(app))
    loops = [("app", app.loop)]
    thread_loop = getattr(getattr(consumer, "_thread", None), "thread_loop", None)
    if thread_loop is not None:
        loops.append(("consumer thread", thread_loop))
    for name, loop in loops:
        try:
            tasks = list(asyncio.all_tasks(loop))  # the consumer thread's, read from here: a diagnostic
        except RuntimeError as exc:
            out.write(f"  [{name}] tasks unreadable: {exc}\n")
            continue
        for task in tasks:
            frames = task.get_stack(limit=6)
            where = " <- ".join(f"{f.f_code.co_name} ({f.f_code.co_filename.rsplit('/', 2)[-1]}:{f.f_lineno})"
                                for f in frames)
            out.write(f"  [{name}] {task.get_name()}: {where or 'not started'}\n")
    out.write(thread_stacks())  # a thread blocked outside any task shows only here
    return out.getvalue()


def partition_table(app: faust.App) -> str:
    """One line per assigned input partition: Faust's committed and read
    offsets, the high watermark, the acked offsets waiting to commit, the
    lowest offset in the worker, aiokafka's fetch position, whether it is
    fetched, and the seek fence's counts."""
    consumer = app.consumer
    lowest = in_worker(app)
    active = consumer._get_active_partitions()
    fence = getattr(consumer, "_fence", None)
    stamps = getattr(consumer, "_fetch_stamps", {})
    try:
        assignment = consumer._thread._ensure_consumer()._fetcher._subscriptions.subscription.assignment
    except Exception:  # not started, or between assignments: positions unknown
        assignment = None
    lines = []
    for tp in sorted(consumer.assignment(), key=lambda t: (t.topic, t.partition)):
        if not app.topics.acks_enabled_for(tp.topic) or consumer._is_changelog_tp(tp):
            continue
        acked = sorted(consumer._acked.get(tp) or [])
        state = assignment.state_value(tp) if assignment is not None else None
        lines.append(
            f"  {tp.topic}[{tp.partition}]: committed {consumer._committed_offset.get(tp)}, "
            f"read {consumer._read_offset.get(tp)}, end {consumer.highwater(tp)}, "
            f"acked {f'{acked[0]}..{acked[-1]} ({len(acked)})' if acked else 'none'}, "
            f"in worker from {lowest.get(tp)}, position {getattr(state, 'position', None)}"
            f"{' (paused in aiokafka)' if getattr(state, 'paused', False) else ''}, "
            f"{'fetched' if tp in active else 'not fetched'}"
            + (f", seeks {fence.seeks.get(tp, 0)} (last fetch saw {stamps.get(tp, 0)}, "
               f"target {fence.targets.get(tp)})" if fence is not None else "") + "\n")
    return "".join(lines)


def queued(app: faust.App) -> list:
    """Messages queued for a stream and not yet taken (each channel once)."""
    channels = {id(c): c for cs in list(app.topics._tp_index.values()) for c in cs}
    return [m for c in channels.values() for e in list(c.queue._queue)
            if (m := getattr(e, "message", None)) is not None]


def in_worker(app: faust.App) -> dict:
    """The lowest offset of each partition with a message in the worker:
    queued for a stream (not yet taken), or taken by one and not acked. One
    pass over the queues and the unacked set per check."""
    lowest: dict = {}

    def add(message) -> None:
        if message.offset < lowest.get(message.tp, message.offset + 1):
            lowest[message.tp] = message.offset

    for m in list(app.consumer._unacked_messages):
        if not m.acked:
            add(m)
    for message in queued(app):
        add(message)
    return lowest


def orphans(app: faust.App, tp, committed: int) -> list:
    """Messages of ``tp`` at or after ``committed`` that Faust counts as
    taken and not acked, but that no queue holds: with no batch in process,
    no stream will ever ack them. Left in Faust's unacked set they would hide
    the stall from the guard and hold up the next rebalance's wait for acks."""
    waiting = {id(m) for m in queued(app)}
    return [m for m in list(app.consumer._unacked_messages)
            if m.tp == tp and not m.acked and m.offset >= committed and id(m) not in waiting]
