"""The worker's watchdog: stacks when the loop blocks or the stall guard
stops finishing its checks (streams/watchdog.py)."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import textwrap

from streams.watchdog import GuardClock, Watch, thread_stacks


def test_guard_clock_counts_from_the_last_finished_check_or_the_start():
    clock = GuardClock()
    assert clock.stuck_for(10.0, since=4.0) == 6.0
    clock.start(11.0)
    assert clock.stuck_for(12.0, since=4.0) == 8.0  # started, not finished: still stuck
    clock.finish(11.5)
    assert clock.stuck_for(12.0, since=4.0) == 0.5


def run_watch(seconds: float, *, guard_every: float | None) -> list[str]:
    """Run a watch on a fresh loop for ``seconds``, with a guard that
    finishes a check every ``guard_every`` seconds (None: never); the
    watch's error lines."""
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Keep(level=logging.ERROR)
    logger = logging.getLogger("streams.watchdog")
    logger.addHandler(handler)

    async def main():
        loop = asyncio.get_running_loop()
        clock = GuardClock()
        watch = Watch(loop, after_s=0.4, clock=clock, report=lambda stuck: f"SNAPSHOT after {stuck:.1f}s\n",
                      every_s=0.05)
        watch.start()
        try:
            end = loop.time() + seconds
            while loop.time() < end:
                if guard_every is not None:
                    clock.start(loop.time())
                    clock.finish(loop.time())
                await asyncio.sleep(guard_every or 0.05)
        finally:
            watch.stop()

    try:
        asyncio.run(main())
    finally:
        logger.removeHandler(handler)
    return records


def test_a_guard_that_never_finishes_is_reported_once_per_window_with_its_snapshot():
    lines = run_watch(1.5, guard_every=None)
    # windows of 0.4 s in 1.5 s: reported at about 0.4, 0.8 and 1.2 s
    assert 2 <= len(lines) <= 4, lines
    assert all("has not finished a check" in line and "SNAPSHOT" in line for line in lines)


def test_a_guard_that_keeps_finishing_is_never_reported():
    assert run_watch(1.2, guard_every=0.1) == []


def test_thread_stacks_name_every_thread_and_where_it_is():
    text = thread_stacks()
    assert "thread MainThread" in text
    assert "test_thread_stacks_name_every_thread_and_where_it_is" in text


def test_a_blocked_loop_gets_every_threads_stack_written_from_outside_it():
    # A callback that blocks the loop: the watch's own callback cannot run,
    # and faulthandler's C thread writes the stacks to stderr.
    code = textwrap.dedent("""
        import asyncio, time
        from streams.watchdog import GuardClock, Watch

        def block_the_loop_here():
            time.sleep(1.5)

        async def main():
            loop = asyncio.get_running_loop()
            watch = Watch(loop, after_s=0.5, clock=GuardClock(), report=lambda s: "", every_s=0.1)
            watch.start()
            await asyncio.sleep(0.2)
            block_the_loop_here()
            watch.stop()

        asyncio.run(main())
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Timeout (0:00:00.5" in done.stderr, done.stderr
    assert "block_the_loop_here" in done.stderr, done.stderr
