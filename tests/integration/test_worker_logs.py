"""A real worker's log (what `murmur worker` writes to a file, not a
terminal) is one JSON object a line, Faust's own lines included."""

from __future__ import annotations

import json
import os
import signal

from deploy import jvm
from deploy.pipeline import process_log, stop_process
from streams.topics import STANCES, topic_name
from tests.integration.conftest import start_worker, wait_for


def test_a_worker_logs_one_json_object_a_line(live):
    worker = start_worker(live, "verdict")  # --loglevel info: Faust says when it is ready
    try:
        wait_for(lambda: "Worker ready" in process_log(live, worker.name, 400), timeout=60,
                 what="the worker's ready line", worker=worker)
    finally:
        stop_process(live, worker.name)
    # The file's own header line, written by the process starter before the worker runs, aside.
    lines = [line for line in process_log(live, worker.name, 400).splitlines()
             if line.strip() and not line.startswith("=== ")]
    rows = [json.loads(line) for line in lines]  # raises on the first line that is not JSON
    assert all({"timestamp", "level", "logger", "event"} <= r.keys() for r in rows), rows
    assert any(r["logger"].startswith(("faust", "mode")) for r in rows), rows  # the libraries' lines, routed too


def test_sigusr1_writes_the_workers_books_and_stacks_to_its_log(live):
    # What the integration tests ask a worker for when a wait times out
    # (tests/integration/conftest.py wait_for; streams/stall_guard.py).
    worker = start_worker(live, "verdict")
    try:
        wait_for(lambda: "Worker ready" in process_log(live, worker.name, 400), timeout=60,
                 what="the worker's ready line", worker=worker)
        os.kill(worker.pid, signal.SIGUSR1)
        wait_for(lambda: "asked by SIGUSR1" in process_log(live, worker.name, 400), timeout=20,
                 what="the worker's answer to SIGUSR1")
        assert jvm.alive(worker.pid)  # answered, not killed by the signal
    finally:
        stop_process(live, worker.name)
    answer = next(json.loads(line)["event"] for line in process_log(live, worker.name, 400).splitlines()
                  if "asked by SIGUSR1" in line)
    # one line per input partition with its offsets, then every task's and thread's stack
    stances = topic_name(STANCES, live.namespace)
    assert f"{stances}[0]: committed" in answer, answer
    assert "thread MainThread" in answer and "[app]" in answer, answer
