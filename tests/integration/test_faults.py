"""Faults operators see, each with a verifier that every input event has
exactly one effect in the read model (lost 0, duplicated 0), the way Kafka
Streams' own system tests check delivery: a killed worker, a restarted
broker, a database away for a while. At-least-once delivery plus idempotent,
keyed writes must absorb all three."""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
import signal
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from connectors import synthetic
from connectors.publisher import Publisher
from deploy import jvm, local
from deploy.pipeline import stop_process
from sinks.cassandra_store import CassandraStore
from streams.kafka import read_to_end
from streams.serde import default_serde
from streams.topics import AGENT_LOG, SCORED, topic_name
from tests.integration.conftest import Worker, free_port, metric_sum, scrape, start_worker, wait_for

pytestmark = pytest.mark.integration
CASE = Path(__file__).resolve().parents[2] / "eval" / "cases" / "uk_sugar_levy_2018"


def workload(agents: int = 200, rounds: int = 8):
    sim = f"fault-{uuid.uuid4().hex[:8]}"
    run = synthetic.generate(CASE, sim_id=sim, seed=11, agents=agents, rounds=rounds)
    memories = {e.record["event_id"] for e in run.events if e.type_name in ("Post", "Observation")}
    return sim, run.events, memories


def verify(store: CassandraStore, sim: str, expected: set[str]) -> dict:
    rows = []
    for agent in store.agents(sim):
        rows += [m["memory_id"] for m in store.memories(sim, agent, limit=1_000_000) if m["kind"] in ("post", "observation")]
    got = set(rows)
    return {"expected": len(expected), "rows": len(rows), "lost": len(expected - got),
            "duplicated": len(rows) - len(got), "unexpected": len(got - expected)}


def where_missing(settings, store: CassandraStore, sim: str, expected: set[str]) -> str:
    """For a failure message: where the memories that never landed are. Each
    missing event's agent-log partition and offset, and whether the agent
    stage wrote its ScoredMemory (then the sink lost it) or not (the agent
    stage did), by partition with the offsets' range."""
    got = set()
    for agent in store.agents(sim):
        got |= {m["memory_id"] for m in store.memories(sim, agent, limit=1_000_000)}
    missing = expected - got
    if not missing:
        return "no memory missing"
    serde = default_serde()
    where, scored = {}, {}
    for m in read_to_end(settings, topic_name(AGENT_LOG, "")):
        try:
            r = serde.decode(m.value())[1]
        except Exception:  # other tests' undecodable records, on purpose
            continue
        if r.get("event_id") in missing:
            where[r["event_id"]] = (m.partition(), m.offset())
    for m in read_to_end(settings, topic_name(SCORED, settings.namespace)):
        r = serde.decode(m.value())[1]
        if r.get("event_id") in missing:
            scored[r["event_id"]] = (m.partition(), m.offset())
    lines = [f"{len(missing)} of {len(expected)} memories missing; {len(scored)} of them on memory.scored "
             f"(the sink lost those), {len(missing) - len(scored)} not (the agent stage did):"]
    by_part: dict = {}
    for event_id in missing:
        p, o = where.get(event_id, (None, None))
        by_part.setdefault(p, []).append((o, event_id in scored))
    for p, offsets in sorted(by_part.items(), key=lambda kv: (kv[0] is None, kv[0])):
        known = sorted(o for o, _ in offsets if o is not None)
        lines.append(f"  agent-log[{p}]: {len(offsets)} missing, offsets {known[:1]}..{known[-1:]}, "
                     f"{sum(s for _, s in offsets)} of them scored")
    return "\n".join(lines)


def landed(store, sim, n) -> bool:
    return store.count_memories(sim, kinds=("post", "observation")) >= n


@dataclass
class Stream:
    worker: Worker
    store: CassandraStore
    sim: str
    second_half: list
    expected: set[str]


@contextmanager
def mid_stream(live, agents: int = 200, **env: str):
    """A worker (importance + cassandra-sink) with the first half of a
    workload published and landing: the moment each fault is injected."""
    w = start_worker(live, "agent,cassandra-sink", **env)
    sim, events, expected = workload(agents=agents)
    half = len(events) // 2
    m = Stream(w, CassandraStore(w.settings), sim, events[half:], expected)
    try:
        Publisher(live).publish(events[:half])
        wait_for(lambda: m.store.count_memories(sim, kinds=("post", "observation")) > 0, timeout=120,
                 what="the first memories", worker=w)
        yield m
    finally:
        m.store.close()  # a test may have replaced it (after a Cassandra restart)
        stop_process(live, w.name)


def recovered(live, m: Stream, what: str) -> None:
    """Restart the worker, wait for every memory, run the verifier."""
    in_flight = len(m.expected) - m.store.count_memories(m.sim, kinds=("post", "observation"))
    m.worker.restart(live)
    wait_for(lambda: landed(m.store, m.sim, len(m.expected)), timeout=240, what=f"all memories after {what}",
             worker=m.worker, explain=lambda: where_missing(m.worker.settings, m.store, m.sim, m.expected))
    result = verify(m.store, m.sim, m.expected)
    print(f"\n{what}: {in_flight} of {len(m.expected)} events not landed before the restart; verifier: {result}")
    assert (result["lost"], result["duplicated"], result["unexpected"]) == (0, 0, 0)
    assert in_flight > 0


@pytest.mark.long  # the soak's short variant covers it in CI
def test_sigkill_worker_mid_stream(live):
    with mid_stream(live) as m:
        w = m.worker
        os.kill(w.pid, signal.SIGKILL)
        jvm.wait_for(lambda: not jvm.alive(w.pid), 10)
        # The stream goes on while the worker is dead.
        Publisher(live).publish(m.second_half)
        recovered(live, m, "SIGKILL worker")


@pytest.mark.long  # the soak's short variant covers it in CI
def test_sigterm_worker_mid_stream(live):
    """A graceful stop (a rolling deploy's SIGTERM) while batches are in
    flight: the worker finishes them, commits and leaves; the restarted one
    goes on from there."""
    with mid_stream(live) as m:
        w = m.worker
        Publisher(live).publish(m.second_half)
        os.kill(w.pid, signal.SIGTERM)
        assert jvm.wait_for(lambda: not jvm.alive(w.pid), 60)
        recovered(live, m, "SIGTERM worker")


@pytest.mark.long  # the soak's short variant covers it in CI
def test_kafka_broker_restart_mid_stream(live):
    # Mid-stream: the worker is consuming when the broker goes away.
    with mid_stream(live) as m:
        w, store, sim, expected = m.worker, m.store, m.sim, m.expected
        restarted = threading.Event()

        def restart():
            local.restart(live, "kafka", log=lambda m: None)
            restarted.set()

        t = threading.Thread(target=restart)
        t.start()
        t.join(180)
        assert restarted.is_set()
        in_flight = len(expected) - store.count_memories(sim, kinds=("post", "observation"))
        Publisher(live).publish(m.second_half)  # the second half goes to the restarted broker
        wait_for(lambda: landed(store, sim, len(expected)), timeout=240, what="all memories after the broker restart",
                 worker=w)
        result = verify(store, sim, expected)
        print(f"\nKafka restart: {in_flight} of {len(expected)} events not yet landed at the restart; verifier: {result}")
        assert (result["lost"], result["duplicated"], result["unexpected"]) == (0, 0, 0)


def test_cassandra_away_mid_stream(live):
    port = free_port()
    metrics = f"http://127.0.0.1:{port}/metrics"
    with mid_stream(live, agents=150, MURMUR_METRICS_PORT=str(port), MURMUR_METRICS_SAMPLE_S="1") as m:
        w, store, sim, expected = m.worker, m.store, m.sim, m.expected
        in_flight = len(expected) - store.count_memories(sim, kinds=("post", "observation"))
        store.close()
        local.down(live, ["cassandra"], log=lambda m: None)
        try:
            Publisher(live).publish(m.second_half)
            with TestClient(create_app(w.settings, run_qdrant_sink=False)) as client:
                health = client.get("/health")
                assert health.status_code == 503 and health.json()["status"] == "degraded"
                assert health.json()["dependencies"]["cassandra"]["ok"] is False
            time.sleep(7)  # sink retries with backoff, and a metrics sample each second
            assert jvm.alive(w.pid)  # the worker waits, retrying; it does not die
            seen = scrape(metrics)  # retried with backoff, and the lag shows it
            retries = metric_sum(seen["murmur_sink_retries"], sink="cassandra-sink")
            lag = metric_sum(seen["murmur_consumer_lag_messages"], topic=topic_name(SCORED, w.settings.namespace))
            assert retries > 0 and lag > 0, (retries, lag)
        finally:
            local.up(live, ["cassandra"], log=lambda m: None)
        wait_for(lambda: landed(store, sim, len(expected)), timeout=240, what="all memories after the outage", worker=w)
        result = verify(store, sim, expected)
        print(f"\nCassandra away: {in_flight} of {len(expected)} events in flight, {retries:.0f} sink retries, "
              f"scored lag {lag:.0f} during the outage; verifier: {result}")
        assert (result["lost"], result["duplicated"], result["unexpected"]) == (0, 0, 0)
        with TestClient(create_app(w.settings, run_qdrant_sink=False)) as client:
            assert client.get("/health").json()["dependencies"]["cassandra"]["ok"] is True


def test_cassandra_killed_mid_stream(live):
    """The database dies without a clean shutdown (OOM killer, power): every
    write it acknowledged must still be there when it comes back, because
    the worker committed those offsets on the strength of the ack. With the
    commit log synced every 10 s (Cassandra's default) the last seconds of
    acknowledged rows, and a keyspace created in them, are gone for good."""
    with mid_stream(live, agents=150) as m:
        w, store, sim, expected = m.worker, m.store, m.sim, m.expected
        store.close()
        pid = local.status(live, ["cassandra"])["cassandra"]["pid"]
        assert pid, "Cassandra is not running"
        os.kill(pid, signal.SIGKILL)
        assert jvm.wait_for(lambda: not jvm.alive(pid), 10)
        try:
            Publisher(live).publish(m.second_half)
            time.sleep(5)
            assert jvm.alive(w.pid)  # the worker waits, retrying
        finally:
            local.up(live, ["cassandra"], log=lambda _: None)
        m.store = CassandraStore(w.settings)
        wait_for(lambda: landed(m.store, sim, len(expected)), timeout=240,
                 what="all memories after Cassandra was killed", worker=w)
        result = verify(m.store, sim, expected)
        print(f"\nCassandra SIGKILLed: verifier: {result}")
        assert (result["lost"], result["duplicated"], result["unexpected"]) == (0, 0, 0)


# Was flaky (2 of 4 fresh-clone runs over two sessions: the restarted worker went silent
# after the stall guard's seek-back, which Faust's fetch loop undid; streams/seek_fence.py
# now keeps it). Passed once since; in make long for the suite's time budget.
@pytest.mark.long
def test_sigterm_worker_while_cassandra_is_away(live):
    """The worst moment for a graceful stop: the sink's batch is stuck
    retrying when SIGTERM comes. The worker must not ack that batch to get
    out; it keeps retrying until its supervisor's grace period ends in
    SIGKILL (Kubernetes: 30 s), and the batch lands once after the restart."""
    with mid_stream(live, agents=150) as m:
        w = m.worker
        m.store.close()
        local.down(live, ["cassandra"], log=lambda _: None)
        try:
            Publisher(live).publish(m.second_half)
            time.sleep(8)  # the sink is now retrying a batch
            os.kill(w.pid, signal.SIGTERM)
            time.sleep(15)
            assert jvm.alive(w.pid), "the worker left with a batch it could not write"
            os.kill(w.pid, signal.SIGKILL)  # the grace period is over
            assert jvm.wait_for(lambda: not jvm.alive(w.pid), 10)
        finally:
            local.up(live, ["cassandra"], log=lambda _: None)
        m.store = CassandraStore(w.settings)
        recovered(live, m, "SIGTERM during a Cassandra outage, SIGKILL 15 s later")


def test_api_killed_under_load_restarts_and_answers_the_same(live, tmp_path):
    """SIGKILL the API process while clients hammer it; a new one answers
    from the same views with the same bytes (the API holds no state)."""
    import socket

    from connectors.publish_cli import Options, run_publish
    from deploy.pipeline import EXAMPLE, start_process

    w = start_worker(live, "agent,cassandra-sink")
    store = CassandraStore(w.settings)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    name = f"api-{w.settings.namespace}"
    env = {**w.env, "MURMUR_API_PORT": str(port), "MURMUR_QDRANT_PATH": str(tmp_path / "qdrant")}
    base = f"http://127.0.0.1:{port}"
    sim = f"apikill-{uuid.uuid4().hex[:6]}"
    try:
        counts = run_publish(live, [EXAMPLE], Options(sim=sim)).counts
        n = counts.published["Post"] + counts.published["Observation"]
        wait_for(lambda: landed(store, sim, n), timeout=120, what="the example", worker=w)

        def up() -> bool:
            try:
                return httpx.get(f"{base}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        pid = start_process(live, name, ["api"], env=env)
        wait_for(up, timeout=60, what="the API")
        paths = [f"/simulations/{sim}/timeline?limit=1000", f"/simulations/{sim}/agents",
                 f"/simulations/{sim}/agents/twitter-2/memories?limit=1000"]
        before = {p: httpx.get(base + p).content for p in paths}
        stats = {"ok": 0, "failed": 0}
        stop = threading.Event()

        def hammer():
            with httpx.Client(timeout=2) as c:
                while not stop.is_set():
                    try:
                        stats["ok" if c.get(base + paths[0]).status_code == 200 else "failed"] += 1
                    except httpx.HTTPError:
                        stats["failed"] += 1

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(2)
        os.kill(pid, signal.SIGKILL)
        jvm.wait_for(lambda: not jvm.alive(pid), 10)
        served_before_kill = stats["ok"]
        stop_process(live, name)
        start_process(live, name, ["api"], env=env)
        wait_for(up, timeout=60, what="the restarted API")
        time.sleep(1)
        stop.set()
        for t in threads:
            t.join()
        after = {p: httpx.get(base + p).content for p in paths}
        print(f"\nAPI kill: {served_before_kill} requests served before SIGKILL, {stats['ok']} in all, "
              f"{stats['failed']} refused while it was down; responses identical after restart: {before == after}")
        assert served_before_kill > 0 and stats["ok"] > served_before_kill
        assert after == before
    finally:
        stop_process(live, name)
        store.close()
        stop_process(live, w.name)
