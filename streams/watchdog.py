"""The worker's own witness when it stops moving: stacks, written from
outside whatever is stuck.

A worker went silent in CI and in the soak: no log line for minutes, not
even from the stall guard, whose every wait on the consumer's thread has a
time limit. Then either the app's event loop stopped running callbacks (a
call that blocks it), or the guard's own task waits on something with no
limit. Two checks tell which, and say where:

* faulthandler's watchdog, re-armed from the app's loop every few seconds.
  When the loop has not run the re-arming callback for ``after_s``, it
  writes every thread's Python stack to stderr (the worker's log). It runs
  on a C thread, so it needs neither the loop nor the thread that blocks it.
* from the same callback, while the loop does run: when the stall guard has
  not finished a check for ``after_s``, a log line with what ``report``
  says (the guard's snapshot: every asyncio task's and thread's stack),
  once per ``after_s``.

The re-arming callback is a plain ``call_later`` chain, not a task, so it
cannot itself be stuck in an await.
"""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import sys
import threading
import traceback
from dataclasses import dataclass
from typing import Callable, Optional

log = logging.getLogger(__name__)


@dataclass
class GuardClock:
    """When the stall guard last started and finished a check (loop time)."""

    started: Optional[float] = None
    finished: Optional[float] = None

    def start(self, now: float) -> None:
        self.started = now

    def finish(self, now: float) -> None:
        self.finished = now

    def stuck_for(self, now: float, since: float) -> float:
        """Seconds the guard has gone without finishing a check: since its
        last finish, or since ``since`` (the watch's start) if it never did."""
        return now - (self.finished if self.finished is not None else since)


def thread_stacks(limit: int = 12) -> str:
    """Every thread's Python stack, innermost last (a few frames each)."""
    names = {t.ident: t.name for t in threading.enumerate()}
    out = []
    for ident, frame in sys._current_frames().items():
        lines = traceback.format_stack(frame, limit=limit)
        out.append(f"  thread {names.get(ident, ident)}:\n" + "".join("    " + line for line in lines))
    return "".join(out)


class Watch:
    """Started on the app's loop; see the module's text."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, after_s: float, clock: GuardClock,
                 report: Callable[[float], str], every_s: float = 5.0) -> None:
        self.loop, self.after_s, self.clock, self.report = loop, after_s, clock, report
        self.every_s = min(every_s, after_s / 4)
        self._since: Optional[float] = None
        self._reported: Optional[float] = None
        self._handle: Optional[asyncio.TimerHandle] = None

    def start(self) -> None:
        self._since = self.loop.time()
        self._tick()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        faulthandler.cancel_dump_traceback_later()

    def _tick(self) -> None:
        # Re-arming cancels the previous timer: it fires only when the loop
        # has not come back here for after_s. repeat: while blocked, a dump
        # every after_s shows whether the block moves.
        faulthandler.dump_traceback_later(self.after_s, repeat=True, file=_stderr())
        now = self.loop.time()
        stuck = self.clock.stuck_for(now, self._since)
        if stuck >= self.after_s and (self._reported is None or now - self._reported >= self.after_s):
            self._reported = now
            try:
                extra = self.report(stuck)
            except Exception as exc:  # a diagnostic must not stop the watch
                extra = f"(the guard's snapshot failed: {exc!r})\n"
            log.error("watchdog: the stall guard has not finished a check for %.0fs, though the loop runs:\n%s",
                      stuck, extra)
        self._handle = self.loop.call_later(self.every_s, self._tick)


def _stderr():
    # faulthandler writes to a file descriptor; pytest's capture replaces
    # sys.stderr with an object that may have none.
    try:
        sys.stderr.fileno()
        return sys.stderr
    except (AttributeError, OSError, ValueError):
        return sys.__stderr__
