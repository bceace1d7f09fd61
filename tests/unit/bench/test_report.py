"""bench.report is read through `head` in the docs: a reader that leaves early is not an error."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_report_renders_the_committed_run():
    out = subprocess.run([sys.executable, "-m", "bench.report", "bench/results/full.json"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.startswith("Run `full` of ")
    assert "| B1 |" in out


def test_report_exits_cleanly_when_the_reader_has_gone():
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte: every write raises EPIPE
    try:
        done = subprocess.run([sys.executable, "-m", "bench.report", "bench/results/full.json"],
                              cwd=ROOT, stdout=write_end, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(write_end)
    assert done.returncode == 0, done.stderr
    assert "BrokenPipeError" not in done.stderr
