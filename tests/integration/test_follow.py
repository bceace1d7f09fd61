"""``murmur publish --follow`` on a simulation that is still being written:
a writer appends a MiroFish run line by line (some lines in two writes), the
publisher follows it, is SIGKILLed mid-file and started again. Every action
reaches the read model once (lost 0, duplicated 0), the restarted publisher
resumes from its stored position, and no memory is scored twice (a re-sent
event costs no LLM call)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from connectors.events import OutEvent
from connectors.publish_cli import Options, Plan
from deploy.pipeline import EXAMPLE
from sinks.cassandra_store import CassandraStore
from streams.errors import DecodeError
from streams.kafka import read_to_end
from streams.serde import default_serde
from streams.topics import AGENT_LOG, PUBLISHER_POSITIONS, SCORED, topic_name
from tests.integration.conftest import start_worker, wait_for
from tests.integration.readmodel import stopped, wait_drained

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def expected_memories(folder: Path, sim: str) -> set[str]:
    """The event ids of every post and observation the finished folder holds."""
    plan = Plan(Options(sim=sim), {})
    plan.add(folder)
    ids = set()
    for src in plan.sources:
        for item in src.poll(complete=True).items:
            if isinstance(item, OutEvent) and item.type_name in ("Post", "Observation"):
                ids.add(item.record["event_id"])
    return ids


def records(settings, topic: str, sim: str, types: tuple[str, ...] = ()) -> list[dict]:
    """One simulation's records of a shared topic, of some types or all (other
    tests put undecodable records there on purpose: they are skipped)."""
    serde = default_serde()
    out = []
    for m in read_to_end(settings, topic):
        try:
            t, r = serde.decode(m.value())
        except DecodeError:
            continue
        if r.get("sim_id") == sim and (not types or t in types):
            out.append(r)
    return out


def publisher(folder: Path, sim: str, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "streams.cli", "publish", str(folder), "--follow", "--sim", sim,
           "--poll-interval", "0.2", "--idle-timeout", "60", "--format", "json"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=log.open("ab"), env=os.environ.copy())


def writer(folder: Path, lines: list[tuple[str, bytes]], pace: float, progress: list[int]) -> None:
    for i, (platform, raw) in enumerate(lines):
        path = folder / platform / "actions.jsonl"
        with path.open("ab") as fh:
            if i % 7 == 3:  # half a line now, the rest a moment later: the follower must wait for it
                fh.write(raw[: len(raw) // 2])
                fh.flush()
                time.sleep(pace)
                fh.write(raw[len(raw) // 2:])
            else:
                fh.write(raw)
        progress[0] = i + 1
        time.sleep(pace)


def test_follow_a_growing_run_through_a_publisher_kill(live, tmp_path):
    sim = f"follow-{uuid.uuid4().hex[:6]}"
    source = tmp_path / "finished"
    folder = tmp_path / "running"
    (folder / "twitter").mkdir(parents=True)
    (folder / "reddit").mkdir()
    for name in ("twitter_profiles.csv", "reddit_profiles.json"):
        (folder / name).write_bytes((EXAMPLE / name).read_bytes())
    # Interleave the two platforms' logs as a running simulation writes them.
    tw = [("twitter", r) for r in (EXAMPLE / "twitter" / "actions.jsonl").read_bytes().splitlines(keepends=True)]
    rd = [("reddit", r) for r in (EXAMPLE / "reddit" / "actions.jsonl").read_bytes().splitlines(keepends=True)]
    lines = [x for pair in zip(tw, rd) for x in pair] + tw[len(rd):] + rd[len(tw):]
    for platform, raw in lines:  # the same run, finished, for what to expect
        p = source / platform / "actions.jsonl"
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("ab") as fh:
            fh.write(raw)
    for name in ("twitter_profiles.csv", "reddit_profiles.json"):
        (source / name).write_bytes((EXAMPLE / name).read_bytes())
    want = expected_memories(source, sim)
    assert len(want) > 100

    w = start_worker(live)
    store = CassandraStore(w.settings)
    log = tmp_path / "publisher.log"
    progress = [0]
    try:
        first = publisher(folder, sim, log)
        write = threading.Thread(target=writer, args=(folder, lines, 0.1, progress), daemon=True)
        write.start()
        wait_for(lambda: progress[0] >= len(lines) // 3, timeout=60, what="a third of the run written")
        first.send_signal(signal.SIGKILL)  # mid-file, mid-batch: nothing graceful
        first.wait(10)
        killed_at = progress[0]
        second = publisher(folder, sim, log)
        # The read model follows the run while it is written, not after.
        wait_for(lambda: store.count_memories(sim, kinds=("post", "observation")) > len(want) // 3, timeout=30,
                 what="memories queryable while the run is written", worker=w)
        assert progress[0] < len(lines), "the writer finished before the read model caught up: slow it down"
        write.join(60)
        out, _ = second.communicate(timeout=120)  # it stops by itself at both platforms' simulation_end
        assert second.returncode == 0, log.read_text()[-3000:]
        summary = json.loads(out.decode().strip().splitlines()[-1])
        print(f"\nkilled after {killed_at} of {len(lines)} lines written; the restart resumed "
              f"{summary['resumed']} already published and published {summary['published_total']}")
        assert summary["stopped_by"] == "simulation_end"
        assert summary["resumed"] > 0  # it did not start again from the top
        assert summary["dead_lettered"] == 3  # the example's three deliberate bad lines, each once

        wait_drained(w.settings, w, "the followed run")
        wait_drained(w.settings, w, "the followed run (again)")
        wait_for(lambda: store.count_memories(sim, kinds=("post", "observation")) >= len(want), timeout=120,
                 what="every memory in the read model", worker=w)
        got = {m["memory_id"] for a in store.agents(sim) for m in store.memories(sim, a, limit=100_000)
               if m["kind"] in ("post", "observation")}
        lost, extra = want - got, got - want
        sent = Counter(r["event_id"] for r in records(live, topic_name(AGENT_LOG), sim, ("Post", "Observation")))
        scored = Counter(r["memory_id"] for r in records(live, topic_name(SCORED, w.settings.namespace), sim)
                         if r["kind"] in ("post", "observation"))
        resent = sum(n - 1 for n in sent.values())
        print(f"read model: {len(got)} of {len(want)} memories, lost {len(lost)}, unexpected {len(extra)}; "
              f"events sent twice by the restart {resent}; memories scored twice {sum(n > 1 for n in scored.values())}")
        assert not lost and not extra
        assert set(sent) == want  # every action on the topics
        assert set(scored) == want and max(scored.values()) == 1  # re-sent events were not scored again
        mine = {p["source"]: p for p in records(live, topic_name(PUBLISHER_POSITIONS), sim)}
        assert mine["twitter/actions.jsonl"]["ended"] and mine["reddit/actions.jsonl"]["ended"]
        assert mine["twitter/actions.jsonl"]["offset"] == (folder / "twitter" / "actions.jsonl").stat().st_size
    finally:
        store.close()
        stopped(live, w)


def test_follow_an_oasis_database_as_rows_arrive(live, tmp_path):
    """OASIS writes no end row: the follower publishes rows as they are
    committed, closes the last round at its idle timeout, and a second run
    resumes after the last row (nothing re-sent)."""
    import shutil
    import sqlite3

    real = ROOT.parent / "shared" / "reference" / "real-runs"
    src, empty = real / "oasis-twitter-gemini" / "twitter_simulation.db", real / "oasis-empty" / "twitter_simulation.db"
    assert src.is_file() and empty.is_file(), f"real OASIS runs missing under {real}"
    db = tmp_path / "twitter_simulation.db"
    shutil.copy(empty, db)
    with sqlite3.connect(f"file:{src}?mode=ro", uri=True) as conn:
        users = conn.execute("SELECT user_id, agent_id, user_name, name, bio, created_at FROM user").fetchall()
        posts = conn.execute("SELECT post_id, user_id, content, created_at FROM post").fetchall()
        trace = conn.execute("SELECT user_id, created_at, action, info FROM trace ORDER BY rowid").fetchall()
    sim = f"oasis-follow-{uuid.uuid4().hex[:6]}"
    cmd = [sys.executable, "-m", "streams.cli", "publish", str(db), "--follow", "--sim", sim, "--poll-interval", "0.2",
           "--idle-timeout", "4", "--format", "json"]
    log = tmp_path / "publisher.log"
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=log.open("ab"))
    with sqlite3.connect(db) as conn:
        conn.executemany("INSERT INTO user VALUES (?, ?, ?, ?, ?, ?, 0, 0)", users)
        conn.executemany("INSERT INTO post (post_id, user_id, content, created_at) VALUES (?, ?, ?, ?)", posts)
        conn.commit()
        for i in range(0, len(trace), 10):  # a step's worth of rows per commit, as OASIS writes them
            conn.executemany("INSERT INTO trace VALUES (?, ?, ?, ?)", trace[i:i + 10])
            conn.commit()
            time.sleep(0.3)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, log.read_text()[-3000:]
    first = json.loads(out.decode().strip().splitlines()[-1])
    assert first["stopped_by"].startswith("idle timeout") and first["read"] == len(trace)
    assert first["published_by_action"] == {"CREATE_POST": 75} and first["published"]["Persona"] == 15
    assert first["published"]["RoundMarker"] == 10  # steps 0..4 opened and closed
    again = subprocess.run(cmd[:-4] + ["--idle-timeout", "1", "--format", "json"], cwd=ROOT, capture_output=True,
                           timeout=60)
    second = json.loads(again.stdout.decode().strip().splitlines()[-1])
    assert again.returncode == 0 and second["resumed"] == len(trace) and second["published_by_action"] == {}
    on_topic = Counter(r["event_id"] for r in records(live, topic_name(AGENT_LOG), sim, ("Post",)))
    assert len(on_topic) == 75 and max(on_topic.values()) == 1
