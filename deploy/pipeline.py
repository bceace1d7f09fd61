"""The main job end to end on this machine (``murmur demo``): services up,
topics and tables created, the bundled example published, a worker run until
every event is queryable, the API left running, a summary printed.

Worker and API run as detached processes with pid files under
``state_dir/run/``, like the JVM services, so ``murmur services down`` stops
them too.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Callable

import httpx

from deploy import jvm
from streams.errors import MurmurError
from streams.settings import PROJECT_ROOT, Settings

EXAMPLE = Path(__file__).resolve().parent.parent / "connectors" / "examples" / "town_hall"
OASIS_EXAMPLE_SQL = EXAMPLE.parent / "town_hall_oasis.sql"
EXAMPLE_QUESTION = "Will the Riverside bike-lane plan win public support?"


def oasis_example(settings: Settings) -> Path:
    """The bundled OASIS example as OASIS writes it: an SQLite database,
    built fresh from its SQL script under the state dir."""
    import sqlite3

    db = settings.state_dir / "examples" / "town_hall_oasis" / "twitter_simulation.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    db.unlink(missing_ok=True)
    conn = sqlite3.connect(db)
    try:
        conn.executescript(OASIS_EXAMPLE_SQL.read_text(encoding="utf-8"))
        conn.commit()
    finally:
        conn.close()
    return db


def _run_dir(settings: Settings) -> Path:
    path = settings.state_dir / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _python_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "streams.cli", *args]


def start_process(settings: Settings, name: str, args: list[str], env: dict[str, str] | None = None) -> int:
    run = _run_dir(settings)
    pid = jvm.read_pid(run / f"{name}.pid")
    if pid is not None and jvm.alive(pid):
        return pid
    return jvm.start_detached(_python_cmd(*args), log_file=run / f"{name}.log", pid_file=run / f"{name}.pid",
                              cwd=PROJECT_ROOT, env=env)


def stop_process(settings: Settings, name: str, timeout: float = 20.0) -> bool:
    pid_file = _run_dir(settings) / f"{name}.pid"
    pid = jvm.read_pid(pid_file)
    stopped = False
    if pid is not None and jvm.alive(pid):
        jvm.stop(pid, timeout)
        stopped = True
    pid_file.unlink(missing_ok=True)
    return stopped


def stop_all_processes(settings: Settings) -> list[str]:
    run = _run_dir(settings)
    return [p.stem for p in sorted(run.glob("*.pid")) if stop_process(settings, p.stem)]


def process_log(settings: Settings, name: str, lines: int = 30) -> str:
    return jvm.tail(_run_dir(settings) / f"{name}.log", lines)


# Services starting and stopping: most of a worker's log, none of its story.
_CHATTER = re.compile(r"\]: (Starting|Stopping|Stopped|Restarting|Started|Shutting down)\b")


def log_digest(text: str, *, event_lines: int = 40) -> str:
    """A worker's JSON log, read: one line per event (``HH:MM:SS level
    logger: event``), multi-line events (the SIGUSR1 report) unfolded up to
    ``event_lines`` lines, services starting and stopping left out."""
    out = []
    for line in text.splitlines():
        try:
            rec = json.loads(line)
            event = str(rec["event"])
        except (ValueError, KeyError, TypeError):
            out.append(line)  # not a log record: the launcher's own lines
            continue
        if _CHATTER.search(event) and "\n" not in event:
            continue
        body = event.splitlines()
        if len(body) > event_lines:
            body = body[:event_lines] + [f"  ... {len(body) - event_lines} more lines"]
        when = str(rec.get("timestamp", ""))[11:19]
        out.append(f"{when} {rec.get('level', '?')} {rec.get('logger', '?')}: " + "\n".join(body))
    return "\n".join(out)


def worker_report(settings: Settings, name: str, pid: int | None, *, lines: int = 400, wait_s: float = 3.0) -> str:
    """What a worker that did not finish was doing: ask it for its books and
    stacks (SIGUSR1, streams/stall_guard.py), give it ``wait_s`` to log
    them, and read the end of its log (:func:`log_digest`)."""
    if pid is not None and jvm.alive(pid):
        os.kill(pid, signal.SIGUSR1)
        time.sleep(wait_s)
    return log_digest(process_log(settings, name, lines))


def wait_until(predicate: Callable[[], bool], *, timeout: float, what: str, alive: Callable[[], str | None]) -> float:
    """Poll ``predicate``; fail fast if a process we depend on died."""
    started = time.monotonic()
    while not predicate():
        dead = alive()
        if dead:
            raise MurmurError(dead)
        if time.monotonic() - started > timeout:
            raise MurmurError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.5)
    return time.monotonic() - started


def run_demo(settings: Settings, *, example: Path | None, sim: str, timeout: float, echo: Callable[[str], None]) -> dict:
    from connectors.publish_cli import Options, run_publish
    from deploy import local
    from sinks.cassandra_store import CassandraStore
    from streams.kafka import create_topics

    t0 = time.monotonic()
    echo("1/5 services: Kafka and Cassandra on 127.0.0.1")
    for name, state in local.up(settings, log=echo).items():
        echo(f"    {name}: {state}")
    echo("2/5 topics and tables")
    created = create_topics(settings)
    echo(f"    {sum(1 for s in created.values() if s == 'created')} topics created, {len(created)} declared")
    store = CassandraStore(settings)
    store.apply_schema()

    from streams.topology import PROCESSORS

    echo(f"3/5 worker: {', '.join(PROCESSORS)}")
    worker_pid = start_process(settings, "worker", ["worker", "--processors", "all"])

    def worker_dead() -> str | None:
        if not jvm.alive(worker_pid):
            return f"the worker exited; its log ({_run_dir(settings) / 'worker.log'}):\n{process_log(settings, 'worker')}"
        return None

    source = example or EXAMPLE
    echo(f"4/5 publish {source} (MiroFish logs) as simulation {sim!r}")
    t_pub = time.monotonic()
    counts = run_publish(settings, [source], Options(sim=sim, question=None if example else EXAMPLE_QUESTION)).counts
    memories = counts.published.get("Post", 0) + counts.published.get("Observation", 0)
    echo(f"    read {counts.read} lines: published {counts.published}, dead-lettered {counts.dead_lettered}, "
         f"skipped {counts.skipped_total}")
    oasis_sim = f"{sim}-oasis"
    oasis_db = oasis_example(settings)
    echo(f"    and {oasis_db} (an OASIS database) as simulation {oasis_sim!r}")
    oasis_counts = run_publish(settings, [oasis_db], Options(sim=oasis_sim, question=EXAMPLE_QUESTION)).counts
    oasis_memories = oasis_counts.published.get("Post", 0) + oasis_counts.published.get("Observation", 0)
    echo(f"    read {oasis_counts.read} trace rows: published {oasis_counts.by_action} and "
         f"{oasis_counts.published.get('Persona', 0)} personas, skipped {oasis_counts.skipped_total}")

    echo("5/5 processing until every memory is queryable")

    def done() -> bool:
        try:
            return (store.count_memories(sim, kinds=("post", "observation")) >= memories
                    and store.count_timeline(sim) >= counts.published.get("Post", 0)
                    and store.count_memories(oasis_sim, kinds=("post", "observation")) >= oasis_memories)
        except Exception:
            return False

    waited = wait_until(done, timeout=timeout, what=f"{memories} memories of {sim!r} in Cassandra", alive=worker_dead)
    queryable_s = time.monotonic() - t_pub
    # Reflections and conflicts follow the memories: wait until every
    # processor has consumed everything (lag 0, twice in a row).
    from streams.topology import input_topics, resolve
    from streams.app import group_id
    from streams.kafka import group_lag

    topics = input_topics(settings, resolve("all"))
    streak = [0]

    def drained() -> bool:
        lag = group_lag(settings, group_id(settings, "all"), topics)
        streak[0] = streak[0] + 1 if lag and all(p.lag == 0 for p in lag) else 0
        return streak[0] >= 2

    wait_until(drained, timeout=timeout, what="the processors to drain", alive=worker_dead)
    # The worker keeps running: events published from now on are processed
    # live (and its metrics stay up for Prometheus).

    api_pid = start_process(settings, "api", ["api"])
    base = f"http://{settings.api_host}:{settings.api_port}"

    def api_dead() -> str | None:
        return None if jvm.alive(api_pid) else f"the API exited; its log:\n{process_log(settings, 'api')}"

    def api_up() -> bool:
        try:
            return httpx.get(f"{base}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(api_up, timeout=60, what=f"the API at {base}", alive=api_dead)
    timeline = httpx.get(f"{base}/simulations/{sim}/timeline", params={"limit": 3}).json()
    agents = [a["agent_id"] for a in httpx.get(f"{base}/simulations/{sim}/agents").json()]
    reflections = {a: httpx.get(f"{base}/simulations/{sim}/agents/{a}/reflections", params={"limit": 100}).json()
                   for a in agents}
    conflicts = httpx.get(f"{base}/simulations/{sim}/conflicts", params={"limit": 1000}).json()
    verdicts = httpx.get(f"{base}/simulations/{sim}/verdicts").json()
    mem_count = store.count_memories(sim)
    store.close()
    reflective = max(agents, key=lambda a: len(reflections[a])) if agents else None
    flipper = conflicts[0]["agent_id"] if conflicts else reflective
    summary = {
        "sim": sim,
        "published": counts.published,
        "dead_lettered": counts.dead_lettered,
        "skipped": counts.skipped,
        "memories_in_cassandra": mem_count,
        "agents": len(agents),
        "reflections": sum(len(r) for r in reflections.values()),
        "conflicts": len(conflicts),
        "verdict": verdicts[-1] if isinstance(verdicts, list) and verdicts else None,
        "oasis_sim": oasis_sim,
        "oasis_published": oasis_counts.published,
        "publish_to_queryable_s": round(queryable_s, 2),
        "wait_after_publish_s": round(waited, 2),
        "total_s": round(time.monotonic() - t0, 2),
    }
    echo("")
    echo(f"Done in {summary['total_s']}s: {mem_count} memories of {len(agents)} agents queryable "
         f"{summary['publish_to_queryable_s']}s after publishing began; {counts.dead_lettered} bad lines dead-lettered.")
    echo(f"{summary['reflections']} reflections by {sum(1 for r in reflections.values() if r)} agents, "
         f"{len(conflicts)} conflicts (older memory superseded, not deleted).")
    if summary["verdict"]:
        echo("Verdict by round (support ratio): " + " ".join(f"r{v['round']}:{v['support_ratio']:+.2f}" for v in verdicts))
        fv = summary["verdict"]
        echo(f"Question: {fv.get('question') or '(none given)'}")
        echo(f"Final verdict: {fv['direction']} (support {fv['support_ratio']:+.3f}, confidence {fv['confidence']:.3f}, "
             f"{fv['post_count']} posts by {fv['author_count']} authors, stances +{fv['stance_positive']} "
             f"-{fv['stance_negative']} ={fv['stance_neutral']})")
        echo(f"  It rests on {fv['posts_read']} posts with a stance signal, {fv['posts_no_signal']} without, "
             f"{fv['posts_unreadable']} the stance model could not read (coverage {fv['coverage']:.0%}), "
             f"{fv['reflection_count']} reflections ({fv['reflections_excluded']} template reflections left out); "
             f"read by {fv['backend']}, whose measured stance reliability {fv['stance_reliability']:.2f} caps confidence.")
    oasis_timeline = httpx.get(f"{base}/simulations/{oasis_sim}/timeline", params={"limit": 3}).json()
    echo(f"The OASIS run ({oasis_sim}): {oasis_memories} memories; its latest posts:")
    for row in oasis_timeline:
        echo(f"  [{row['agent_id']}] ({row['importance']}) {row['content'][:90]}")
    # What scored and embedded them, from the memories themselves (the
    # timeline's rows do not carry it).
    memories = [m for a in agents
                for m in httpx.get(f"{base}/simulations/{sim}/agents/{a}/memories", params={"limit": 100}).json()]
    scorers = sorted({m.get("scorer") or "unknown" for m in memories})
    embedders = sorted({m.get("embedder") or "none" for m in memories})
    offline = all(s.split(":")[-1] == "deterministic" for s in scorers)  # reflections: "reflection:<scorer>"
    echo(f"Latest posts (importance in brackets; scored by {', '.join(scorers)}, embedded by {', '.join(embedders)}"
         + ("): the deterministic backend, offline, no model (MURMUR_LLM__BACKEND=vllm and a server for one)"
            if offline else "):"))
    for row in timeline:
        echo(f"  [{row['agent_id']}] ({row['importance']}) {row['content'][:90]}")
    if reflective and reflections[reflective]:
        echo(f"Reflections of {reflective}:")
        for r in reflections[reflective][:3]:
            echo(f"  [{r['trigger']}, cites {len(r['source_ids'])}] {r['content'][:100]}")
    for c in conflicts[:2]:
        echo(f"Conflict of {c['agent_id']}: \"{(c['new_content'] or '')[:60]}\" vs \"{(c['old_content'] or '')[:60]}\"")
        echo(f"  reason: {c['reason'][:100]}")
    echo("")
    echo(f"The worker keeps processing what is published (metrics: http://{settings.metrics_host}:{settings.metrics_port}/metrics).")
    echo(f"Live monitor: {base}/simulations/{sim}/monitor")
    echo(f"The API is running at {base} (docs: {base}/docs). Try:")
    echo(f"  curl -s {base}/health")
    echo(f"  curl -sN {base}/simulations/{sim}/stream")
    echo(f"  curl -s '{base}/simulations/{sim}/timeline?limit=5'")
    echo(f"  curl -s '{base}/simulations/{sim}/agents/{reflective}/memories?limit=5'")
    echo(f"  curl -s '{base}/simulations/{sim}/agents/{reflective}/reflections'")
    echo(f"  curl -s '{base}/simulations/{sim}/conflicts'")
    echo(f"  curl -s '{base}/simulations/{sim}/verdicts'")
    echo(f"  curl -s -XPOST '{base}/simulations/{sim}/agents/{flipper}/retrieve' -H 'content-type: application/json' "
         "-d '{\"query\": \"bike lane plan\", \"top_k\": 3, \"weights\": {\"relevance\": 2, \"recency\": 1, \"importance\": 1}}'")
    echo(f"  curl -s '{base}/simulations/{sim}/agents/{reflective}/context?query=bike%20lane%20plan&budget=200'"
         "   # its memory block for a next prompt (docs/context.md)")
    # The murmur command lives in the venv `make` set up; say how to reach it.
    venv = Path(sys.prefix)
    activate = f". {venv}/bin/activate" if sys.prefix != sys.base_prefix else "the environment murmur is installed in"
    echo(f"murmur commands need the venv: {activate} (or run {venv}/bin/murmur). Then:")
    echo("  murmur tail scored --from-beginning --max 5")
    echo("  murmur tail dead-letter --from-beginning")
    echo("  murmur tail agent-log -o -5 --format json   # the last 5 records of each partition, with key and Kafka time")
    echo("Stop everything (services, worker, API): murmur services down")
    return summary
