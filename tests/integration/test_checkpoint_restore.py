"""A checkpoint restored and caught up gives the read model of an
uninterrupted run, row by row (memories, reflections, conflicts, verdicts).

It found three real bugs, all fixed: a fresh broker's lagging metadata
failing Faust's changelog partition check; a re-emitted verdict counting
today's held stances; and, under load, Faust losing the message at a
partition's committed offset after a restart (its commit rule jumped over
it; see streams/faust_consumer.py and processors/stall_guard.py).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from connectors import checkpoint as ck
from connectors import synthetic
from connectors.publisher import Publisher
from deploy import jvm
from deploy.pipeline import stop_process
from processors.worker import input_topics, resolve
from sinks.cassandra_store import CassandraStore
from streams.app import group_id
from streams.kafka import group_lag
from tests.integration.conftest import start_worker, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.restore]
CASE = Path(__file__).resolve().parents[2] / "eval" / "cases" / "ireland_smoking_ban_2004"


LAGGING: list = []  # the partitions still behind at the last check, for the failure message


def drained(settings) -> bool:
    lag = group_lag(settings, group_id(settings, "all"), input_topics(settings, resolve("all")))
    LAGGING[:] = [p for p in lag if p.lag]
    return bool(lag) and all(p.lag == 0 for p in lag)


def wait_drained(settings, w, what: str) -> None:
    try:
        wait_for(lambda: drained(settings), timeout=180, what=what, worker=w)
    except pytest.fail.Exception:
        pytest.fail(f"timed out after 180s waiting for {what}; still lagging: {LAGGING}")


def snapshot(store: CassandraStore, sim: str) -> dict:
    agents = sorted(store.agents(sim))
    memories = sorted((m["memory_id"], m["kind"], m["importance"], m["valid_to"], m["superseded_by"])
                      for a in agents for m in store.memories(sim, a, limit=100_000))
    reflections = sorted((r["reflection_id"], tuple(r["source_ids"]), r["content"]) for a in agents
                         for r in store.reflections(sim, a, limit=100_000))
    conflicts = sorted((c["conflict_id"], c["old_memory_id"], c["new_memory_id"]) for c in store.conflicts(sim, limit=100_000))
    verdicts = [(v["round"], v["support_ratio"], v["post_count"], v["author_count"], v["stance_positive"],
                 v["stance_negative"], v["flips"]) for v in store.verdicts(sim)]
    return {"memories": memories, "reflections": reflections, "conflicts": conflicts, "verdicts": verdicts}


def stopped(live, w) -> None:
    stop_process(live, w.name, timeout=30)  # SIGTERM: Faust commits on the way out
    jvm.wait_for(lambda: not jvm.alive(w.pid), 30)


def test_restore_then_catch_up_equals_uninterrupted(live):
    w = start_worker(live)
    store = CassandraStore(w.settings)
    sim = f"ckpt-{uuid.uuid4().hex[:6]}"
    run = synthetic.generate(CASE, sim_id=sim, seed=5, agents=30, rounds=8)
    cut = next(i for i, e in enumerate(run.events) if e.type_name == "RoundMarker" and e.record["round"] == 4)
    try:
        Publisher(live).publish(run.events[:cut])
        wait_drained(w.settings, w, "the first half")
        stopped(live, w)
        record = ck.create(w.settings, processors="all", sim_id=sim, round_=3, note="test")
        ck.save(w.settings, record)
        assert record["changelog_offsets"] and any(o["offset"] > 0 for o in record["group_offsets"])

        w.restart(live)
        Publisher(live).publish(run.events[cut:])
        wait_drained(w.settings, w, "the second half")
        wait_for(lambda: len(store.verdicts(sim)) == 8, timeout=60, what="8 verdicts", worker=w)
        uninterrupted = snapshot(store, sim)
        assert uninterrupted["reflections"] and uninterrupted["verdicts"]
        stopped(live, w)

        summary = ck.restore(w.settings, record["event_id"])
        assert summary["table_keys"] > 0
        w.restart(live)
        wait_drained(w.settings, w, "the catch-up")
        restored = snapshot(store, sim)
        print(f"\ncheckpoint restore: {summary}; rows compared: "
              + ", ".join(f"{k} {len(v)}" for k, v in restored.items()))
        for part in uninterrupted:
            extra = sorted(set(restored[part]) - set(uninterrupted[part]))[:5]
            missing = sorted(set(uninterrupted[part]) - set(restored[part]))[:5]
            assert restored[part] == uninterrupted[part], f"{part}: only after restore {extra}, only uninterrupted {missing}"
    finally:
        store.close()
        stop_process(live, w.name)
