"""A message Faust lost track of is read again, not committed over.

tests/integration/faust_drop_app.py loses the message at the committed
offset of partition 0 the way Faust does after a restart under load (the
stream skips it, nobody acks it). On Faust's own commit rule the worker
commits past it: the message is lost (the control run). On Murmur's
(streams/faust_consumer.py) the commit waits and the stall guard seeks the
partition back: the message is processed and the group catches up.
"""

from __future__ import annotations

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


def run_app(live, tmp_path: Path, *, faust_rule: bool = False, drop_always: bool = False) -> tuple[set, list, int | None]:
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
    args += ["--faust-commit-rule"] * faust_rule + ["--drop-always"] * drop_always
    with open(log, "w") as f:
        proc = subprocess.Popen(args, cwd=PROJECT_ROOT, stdout=f, stderr=subprocess.STDOUT)
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
        proc.wait(30)
    processed = [tuple(map(int, line.split())) for line in out.read_text().splitlines()]
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
    _, log, rc = run_app(live, tmp_path, drop_always=True)
    assert rc not in (0, None)
    assert sum("stall guard" in line and "seeking back to 5" in line for line in log) == 3
    crash = [line for line in log if "after 3 seeks" in line]
    assert crash and "stays at committed offset 5 (end 20)" in crash[0], log[-20:]
