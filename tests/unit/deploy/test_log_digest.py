"""A worker's JSON log read for a failure message (deploy/pipeline.py)."""

from __future__ import annotations

import json

from deploy.pipeline import log_digest


def record(event: str, level: str = "info", logger: str = "streams.runtime") -> str:
    return json.dumps({"event": event, "level": level, "logger": logger, "timestamp": "2026-12-05T21:48:20.163775Z"})


def test_the_story_stays_and_the_chatter_goes():
    text = "\n".join([
        "=== 2026-12-05 21:48:17 starting: python -m streams.cli worker",
        record("[^Worker]: Starting...", logger="faust.worker"),
        record("[^--Consumer]: Stopping...", logger="streams.faust_consumer"),
        record("[^---Recovery]: Seek stream partitions to committed offsets.", logger="faust.tables.recovery"),
        record("agent: sim.agent-log.v1[2] went on past offset 7507, seeking back", level="warning"),
        "not json at all",
    ])
    assert log_digest(text).splitlines() == [
        "=== 2026-12-05 21:48:17 starting: python -m streams.cli worker",
        "21:48:20 info faust.tables.recovery: [^---Recovery]: Seek stream partitions to committed offsets.",
        "21:48:20 warning streams.runtime: agent: sim.agent-log.v1[2] went on past offset 7507, seeking back",
        "not json at all",
    ]


def test_a_report_is_unfolded_and_cut_at_its_limit():
    report = "worker state (asked by SIGUSR1):\n" + "\n".join(f"  p[{n}]: committed {n}" for n in range(10))
    lines = log_digest(record(report, level="warning", logger="streams.stall_guard"), event_lines=4).splitlines()
    assert lines == ["21:48:20 warning streams.stall_guard: worker state (asked by SIGUSR1):",
                     "  p[0]: committed 0", "  p[1]: committed 1", "  p[2]: committed 2", "  ... 7 more lines"]
