"""A message Faust lost track of is read again, not committed over.

tests/integration/faust_drop_app.py loses the message at the committed
offset of partition 0 the way Faust does after a restart under load (the
stream skips it, nobody acks it). On Faust's own commit rule the worker
commits past it: the message is lost (the control run). On Murmur's
(streams/faust_consumer.py) the commit waits and the stall guard seeks the
partition back: the message is processed and the group catches up. The
app runs in asyncio's debug mode, which raises on a call into an event loop
from another thread: the guard's seek used to be one (Faust seeks from the
app's loop, aiokafka lives on its own), and in CI it now and then left the
fetcher asleep and the whole worker stalled after the seek. With ``gap``,
the app loses a block of messages before any stream sees them, as Faust's
fetch loop does when it hands them over while flow control is off: Faust
counts them as a gap, acked (the control run loses them); Murmur's consumer
does not on a gapless input, and the stall guard reads them again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition

from deploy.pipeline import PROJECT_ROOT
from streams.app import group_id
from streams.kafka import ensure_topics, group_lag, make_consumer, make_producer
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

PER_PARTITION = 20
COMMITTED = 5  # the group starts here on partition 0: the message Faust loses


def run_app(live, tmp_path: Path, *, faust_rule: bool = False, drop_always: bool = False, orphan: bool = False,
            strict_order: bool = False, asyncio_debug: bool = True, gap: int = 0) -> tuple[set, list, int | None]:
    """Run the app until its group caught up (or, with ``drop_always``,
    until it exits): (partition, offset) processed, log lines, exit code."""
    topic = f"guard-{uuid.uuid4().hex[:8]}"
    group = f"guard-{uuid.uuid4().hex[:6]}"
    ensure_topics(live, {topic: (2, {})})
    producer = make_producer(live)
    for p in (0, 1):
        for i in range(PER_PARTITION):
            producer.produce(topic, key=b"k", value=f"{p}-{i}".encode(), partition=p)
    assert producer.flush(30) == 0
    gid = group_id(live, group)
    c = make_consumer(live, group=gid)
    try:
        c.commit(offsets=[TopicPartition(topic, 0, COMMITTED), TopicPartition(topic, 1, 0)], asynchronous=False)
    finally:
        c.close()

    out = tmp_path / f"{group}.out"
    log = tmp_path / f"{group}.log"
    args = [sys.executable, "-m", "tests.integration.faust_drop_app", "--topic", topic, "--group", group,
            "--drop-offset", str(COMMITTED), "--out", str(out)]
    args += ["--faust-commit-rule"] * faust_rule + ["--drop-always"] * drop_always + ["--orphan"] * orphan + ["--strict-order"] * strict_order
    args += ["--gap", str(gap)] * bool(gap)
    with open(log, "w") as f:
        # asyncio's debug mode: a call into the consumer thread's loop from
        # another thread (Faust's own seek did that) raises instead of
        # leaving the fetcher asleep now and then.
        env = {**os.environ, "PYTHONASYNCIODEBUG": "1" if asyncio_debug else ""}
        proc = subprocess.Popen(args, cwd=PROJECT_ROOT, stdout=f, stderr=subprocess.STDOUT, env=env)
    try:
        if drop_always:
            proc.wait(90)
            return set(), log.read_text().splitlines(), proc.returncode

        def caught_up() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"the Faust app exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
            lag = group_lag(live, gid, [topic])
            return bool(lag) and all(p.lag == 0 for p in lag)

        wait_for(caught_up, timeout=90, what=f"group {gid} to commit to the end of {topic}")
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:  # Faust waits for acks that never come: a failing run must not linger
            proc.kill()
            proc.wait(10)
    processed = [tuple(map(int, line.split())) for line in out.read_text().splitlines()]
    run_app.order = processed  # in processing order, for the strict-order test
    return set(processed), log.read_text().splitlines(), None


def test_faust_commit_rule_loses_the_message_at_the_committed_offset(live, tmp_path):
    # The control: proves the check below can fail. If a Faust release fixes
    # its rule, this fails, and streams/faust_consumer.py can go.
    processed, _, _ = run_app(live, tmp_path, faust_rule=True)
    assert (0, COMMITTED + 1) in processed and (0, PER_PARTITION - 1) in processed
    assert (0, COMMITTED) not in processed, "Faust's commit rule kept the message: drop streams/faust_consumer.py"


def test_fixed_rule_and_stall_guard_read_the_lost_message_again(live, tmp_path):
    processed, log, _ = run_app(live, tmp_path)
    wanted = {(0, o) for o in range(COMMITTED, PER_PARTITION)} | {(1, o) for o in range(PER_PARTITION)}
    assert wanted <= processed, f"never processed: {sorted(wanted - processed)}"
    reseeks = [line for line in log if "stall guard" in line]
    assert len(reseeks) == 1 and f"seeking back to {COMMITTED}" in reseeks[0], reseeks


def test_a_partition_that_stays_lost_stops_the_worker_with_its_name(live, tmp_path):
    # Lost on every delivery: three seeks, then the worker exits non-zero
    # (a supervisor restarts it) instead of idling behind a frozen commit.
    # Without asyncio's debug mode: the crash goes through mode's
    # Service.crash, which marks every child service crashed, the consumer
    # thread's too, from the app's loop; harmless on the way out, but debug
    # mode raises there and the worker would not exit.
    _, log, rc = run_app(live, tmp_path, drop_always=True, asyncio_debug=False)
    assert rc not in (0, None)
    assert sum("stall guard" in line and "seeking back to 5" in line for line in log) == 3
    crash = [line for line in log if "after 3 seeks" in line]
    assert crash and "stays at committed offset 5 (end 20)" in crash[0], log[-20:]


def test_a_message_taken_and_never_acked_is_read_again(live, tmp_path):
    # Faust keeps counting it as in the worker, so "nowhere in the worker"
    # never holds; that no batch is being processed is what tells the guard
    # (in a real worker, Runtime.busy). Seen in B8 under load and in CI.
    processed, log, _ = run_app(live, tmp_path, orphan=True)
    wanted = {(0, o) for o in range(COMMITTED, PER_PARTITION)} | {(1, o) for o in range(PER_PARTITION)}
    assert wanted <= processed, f"never processed: {sorted(wanted - processed)}"
    reseeks = [line for line in log if "stall guard" in line]
    assert reseeks and f"seeking back to {COMMITTED}" in reseeks[0] and "never acked (from 5)" in reseeks[0], reseeks


def test_with_strict_order_a_skipped_message_is_read_again_before_the_ones_after_it(live, tmp_path):
    # What the agent stage asks for (streams/partition_order.py): the stream
    # goes on past the message at 5; the offsets after it are held back and
    # the partition sought back, so partition 0 is processed 5, 6, 7... in order.
    processed, log, _ = run_app(live, tmp_path, strict_order=True)
    wanted = {(0, o) for o in range(COMMITTED, PER_PARTITION)} | {(1, o) for o in range(PER_PARTITION)}
    assert wanted <= processed, f"never processed: {sorted(wanted - processed)}"
    first_seen = list(dict.fromkeys(o for p, o in run_app.order if p == 0))
    assert first_seen == list(range(COMMITTED, PER_PARTITION)), first_seen
    assert any(f"seeking back to {COMMITTED}" in line for line in log), log[-20:]


GAP = 3  # offsets 6, 7 and 8 of partition 0 never reach a stream the first time


def test_faust_counts_offsets_that_never_reached_a_stream_as_acked(live, tmp_path):
    # The control: Faust's fetch loop hands over 5, then 9, records 6-9 as a
    # gap and commits over 6-8, which no stream saw: lost.
    processed, _, _ = run_app(live, tmp_path, faust_rule=True, gap=GAP)
    assert (0, COMMITTED) in processed and (0, PER_PARTITION - 1) in processed
    lost = {(0, o) for o in range(COMMITTED + 1, COMMITTED + 1 + GAP)}
    assert not lost & processed, "Faust no longer counts a gap as acked: see App.gapless_topics"


def test_offsets_that_never_reached_a_stream_of_a_gapless_input_are_read_again(live, tmp_path):
    processed, log, _ = run_app(live, tmp_path, gap=GAP)
    wanted = {(0, o) for o in range(COMMITTED, PER_PARTITION)} | {(1, o) for o in range(PER_PARTITION)}
    assert wanted <= processed, f"never processed: {sorted(wanted - processed)}"
    assert any(f"offsets {COMMITTED + 1}-{COMMITTED + GAP} passed without reaching a stream" in line
               for line in log), log[-20:]
    assert any("stall guard" in line and f"seeking back to {COMMITTED + 1}" in line for line in log), log[-20:]
