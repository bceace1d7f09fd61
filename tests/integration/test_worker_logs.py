"""A real worker's log (what `murmur worker` writes to a file, not a
terminal) is one JSON object a line, Faust's own lines included."""

from __future__ import annotations

import json

from deploy.pipeline import process_log, stop_process
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
