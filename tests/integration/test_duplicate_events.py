"""Duplicate event ids on the wire (a publisher's retry, a replayed file, a
redelivery) change nothing: a simulation published once, and the same
simulation with copies of a fifth of each phase's events mixed in plus a
tenth of the previous phase's re-sent (late, across round boundaries), give
the same read model, row by row.

Both runs publish in drained phases (personas; then per round: start
marker, observations, posts, end marker), as tests/integration/
test_batch_equivalence.py explains: per-agent state depends on the order of
an agent's memories, which Kafka does not fix across the posts and
observations topics, so two free-running publications can differ without a
single duplicate.
"""

from __future__ import annotations

import random
import uuid
from pathlib import Path

from connectors import synthetic
from connectors.publisher import Publisher
from sinks.cassandra_store import CassandraStore
from tests.integration.conftest import start_worker, wait_for
from tests.integration.readmodel import assert_same, snapshot, stopped, wait_drained

CASE = Path(__file__).resolve().parents[2] / "eval" / "cases" / "ireland_smoking_ban_2004"
ROUNDS = 6


def phases(events: list) -> list[list]:
    def kind(e) -> str:
        return e.record["kind"] if e.type_name == "RoundMarker" else e.type_name

    out = [[e for e in events if e.type_name == "Persona"]]
    for rnd in range(ROUNDS):
        mine = [e for e in events if e.type_name != "Persona" and e.record["round"] == rnd]
        out += [[e for e in mine if kind(e) == k] for k in ("round_start", "Observation", "Post", "round_end")]
    return out


def with_duplicates(parts: list[list], rng: random.Random) -> tuple[list[list], dict]:
    out, copies = [], {}
    for i, part in enumerate(parts):
        again = [e for e in part if rng.random() < 0.2]
        late = [e for e in (parts[i - 1] if i else []) if rng.random() < 0.1]
        mixed = part + again + late
        rng.shuffle(mixed)
        out.append(mixed)
        for e in again + late:
            copies[e.type_name] = copies.get(e.type_name, 0) + 1
    return out, copies


def run_once(live, parts: list[list], sim: str) -> dict:
    w = start_worker(live)
    store = CassandraStore(w.settings)
    publisher = Publisher(live)
    try:
        for part in parts:
            if part:
                publisher.publish(part)
            # Twice: one processor's outputs are the next one's inputs.
            wait_drained(w.settings, w, "a phase")
            wait_drained(w.settings, w, "a phase (again)")
        wait_for(lambda: len(store.verdicts(sim)) == ROUNDS, timeout=60, what=f"{ROUNDS} verdicts", worker=w)
        return snapshot(store, sim)
    finally:
        store.close()
        stopped(live, w)


def test_duplicate_event_ids_change_nothing(live):
    sim = f"dup-{uuid.uuid4().hex[:6]}"
    clean = phases(synthetic.generate(CASE, sim_id=sim, seed=9, agents=30, rounds=ROUNDS).events)
    seed = random.randrange(1 << 30)
    duplicated, copies = with_duplicates(clean, random.Random(seed))
    print(f"\nduplicates (seed {seed}): {sum(copies.values())} copies among "
          f"{sum(map(len, duplicated))} events: {copies}")
    assert copies.get("Post") and copies.get("Observation") and copies.get("Persona")

    once = run_once(live, clean, sim)
    assert once["memories"] and once["reflections"] and once["verdicts"]
    twice = run_once(live, duplicated, sim)  # a worker and read model of its own (another namespace)
    print("rows compared: " + ", ".join(f"{k} {len(v)}" for k, v in once.items()))
    assert_same(twice, once, "with duplicates")
