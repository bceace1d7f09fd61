"""`murmur dead-letters redrive` against the real Kafka (and, for the
idempotence check, a real worker and Cassandra).

The dead-letter topic is shared by every namespace, so each test redrives
only dead letters of a source topic of its own (--source-topic) with a
progress group of its own namespace: other tests' dead letters are passed
over, never sent anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from connectors.publish_cli import run_publish
from deploy.pipeline import stop_process
from sinks.cassandra_store import CassandraStore
from streams.dead_letter import dead_letter_record
from streams.kafka import BatchProducer, admin, ensure_topics, make_producer, read_to_end
from streams.redrive import COUNT_HEADER, OF_HEADER, Filters, redrive
from streams.serde import default_serde
from streams.topics import DEAD_LETTER, SCORED, topic_name
from tests.integration.conftest import start_worker, wait_for
from tests.integration.readmodel import drained, snapshot

pytestmark = pytest.mark.integration


def put_dead_letters(settings, records: list[dict]) -> None:
    """Onto the dead-letter topic as the pipeline writes them (keyed by source topic)."""
    serde = default_serde()
    producer = BatchProducer(make_producer(settings))
    for r in records:
        producer.send(topic_name(DEAD_LETTER), (r["source_topic"] or r["stage"]).encode(), serde.encode("DeadLetter", r))
    producer.flush_blocking()


def failed(topic: str, *, raw: bytes, key: bytes, offset: int, headers=None, error_type="ServiceUnavailable") -> dict:
    return dead_letter_record(stage="agent", reason=f"{error_type}: the model did not answer", raw=raw,
                              source_topic=topic, source_partition=1, source_offset=offset, key=key,
                              error_type=error_type, headers=headers)


def on_topic(settings, topic: str) -> list:
    return [m for m in read_to_end(settings, topic) if m.partition() == 1]


@pytest.fixture
def source_topic(live):
    """A topic of this test's own for the dead letters to come from, dropped after."""
    topic = f"it-redrive-{uuid.uuid4().hex[:8]}"
    ensure_topics(live, {topic: (2, {})})
    yield topic
    client = admin(live)  # held: the future fails if its client is collected first
    client.delete_topics([topic], request_timeout=30)[topic].result()


def test_redrive_sends_back_once_with_headers_and_stops_at_the_limit(live, source_topic):
    settings = live.model_copy(update={"namespace": f"it{uuid.uuid4().hex[:8]}"})
    topic = source_topic
    only_ours = Filters(source_topic=topic)
    put_dead_letters(settings, [
        failed(topic, raw=b"value-1", key=b"sim/a", offset=7, headers=[("trace", b"t-1")]),
        failed(topic, raw=b"not avro", key=b"sim/a", offset=8, error_type="DecodeError"),
        {**failed(topic, raw=b"gone", key=b"sim/c", offset=3), "source_partition": 5},  # the topic has 2
    ])

    report = redrive(settings, only_ours)
    assert dict(report.redriven) == {topic: 1}
    assert [why for why in report.skipped if "contract" in why] and report.examined >= 3
    assert report.skipped["its source topic or partition no longer exists"] == 1
    [msg] = on_topic(settings, topic)
    assert (msg.key(), msg.value()) == (b"sim/a", b"value-1")
    headers = dict(msg.headers())
    assert headers["trace"] == b"t-1" and headers[COUNT_HEADER] == b"1" and OF_HEADER in headers

    # Progress was recorded: a second run sends nothing again.
    again = redrive(settings, only_ours)
    assert sum(again.redriven.values()) == 0
    assert len(on_topic(settings, topic)) == 1

    # The record fails again: its new dead letter carries the headers it was
    # read with. Past the limit it stays where it is, and says why.
    put_dead_letters(settings, [failed(topic, raw=msg.value(), key=msg.key(), offset=msg.offset(),
                                       headers=msg.headers())])
    limited = redrive(settings, only_ours, limit=1)
    assert sum(limited.redriven.values()) == 0
    assert any("redriven 1 times already" in why for why in limited.skipped)
    assert len(on_topic(settings, topic)) == 1

    # A dry run counts and sends nothing, and records no progress.
    put_dead_letters(settings, [failed(topic, raw=b"value-2", key=b"sim/b", offset=9)])
    env = {**os.environ, "MURMUR_NAMESPACE": settings.namespace}
    out = subprocess.run([sys.executable, "-m", "streams.cli", "dead-letters", "redrive", "--source-topic", topic,
                          "--dry-run"], capture_output=True, text=True, timeout=120, env=env, check=True).stdout
    assert "would redrive: 1" in out and f"{topic}: 1" in out, out
    assert len(on_topic(settings, topic)) == 1
    out = subprocess.run([sys.executable, "-m", "streams.cli", "dead-letters", "redrive", "--source-topic", topic],
                         capture_output=True, text=True, timeout=120, env=env, check=True).stdout
    assert "redriven: 1" in out, out
    assert sorted(m.value() for m in on_topic(settings, topic)) == [b"value-1", b"value-2"]

    listed = subprocess.run([sys.executable, "-m", "streams.cli", "dead-letters", "list", "--topic", topic],
                            capture_output=True, text=True, timeout=120, env=env, check=True).stdout
    # 5 dead letters of this topic: 4 redrivable (neither the limit nor the partition counted), 1 contract failure
    assert any(line.split()[:2] == ["4", "4"] for line in listed.splitlines()), listed
    assert any(line.split()[:2] == ["1", "0"] for line in listed.splitlines()), listed


def scored_memory(sim: str, i: int) -> dict:
    """A ScoredMemory as the agent pass writes it."""
    return {"event_id": f"{sim}-scored-{i}", "memory_id": f"{sim}-m{i}", "sim_id": sim, "round": i, "ts": 1_000 + i,
            "agent_id": f"a{i % 2}", "kind": "post", "public": True, "action": "CREATE_POST", "platform": "twitter",
            "content": f"post {i}", "importance": 5, "importance_fallback": False, "scorer": "test",
            "embedding": [], "embedding_f32": None, "embedder": "", "valence": None,
            "source_topic": "sim.agent-log.v1", "source_partition": 0, "source_offset": i}


def send_scored(settings, records: list[dict]) -> None:
    """Straight onto the namespace's scored topic, keyed by agent as the agent pass writes them."""
    serde, producer = default_serde(), BatchProducer(make_producer(settings))
    topic = topic_name(SCORED, settings.namespace)
    for r in records:
        producer.send(topic, f"{r['sim_id']}/{r['agent_id']}".encode(), serde.encode("ScoredMemory", r))
    producer.flush_blocking()


def test_a_redriven_record_processed_twice_changes_nothing(live):
    """The sink's writes are keyed upserts: a scored memory redriven twice
    onto its topic rewrites the same rows."""
    w = start_worker(live, "cassandra-sink")
    settings = w.settings
    sim = f"rd-{uuid.uuid4().hex[:8]}"
    store = CassandraStore(settings)
    try:
        scored = topic_name(SCORED, settings.namespace)
        # Straight onto the namespace's scored topic: this worker runs the sink only.
        send_scored(settings, [scored_memory(sim, i) for i in range(4)])
        wait_for(lambda: store.count_memories(sim) == 4, timeout=120, what="the memories", worker=w)
        before = snapshot(store, sim)

        msg = next(m for m in read_to_end(settings, scored) if m.key() == f"{sim}/a0".encode())
        dl = dead_letter_record(stage="cassandra-sink", reason="RuntimeError: a bug, fixed since", raw=msg.value(),
                                source_topic=scored, source_partition=msg.partition(), source_offset=msg.offset(),
                                key=msg.key(), error_type="RuntimeError", headers=msg.headers(), sim_id=sim)
        put_dead_letters(settings, [dl, {**dl, "event_id": dl["event_id"] + "-again"}])
        report = redrive(settings, Filters(source_topic=scored))
        assert dict(report.redriven) == {scored: 2}
        redriven = [m for m in read_to_end(settings, scored) if dict(m.headers() or []).get(COUNT_HEADER) == b"1"]
        assert len(redriven) == 2 and all(m.value() == msg.value() for m in redriven)
        wait_for(lambda: drained(settings, "cassandra-sink"), timeout=120, what="the sink to read them", worker=w)
        assert snapshot(store, sim) == before and store.count_memories(sim) == 4
    finally:
        store.close()
        stop_process(live, w.name)
