"""One record a view refuses for its own values does not stall a sink:
it is dead-lettered with the error after a few tries, the rest of its batch
lands, a metric counts it (issue: a record Cassandra refuses made the sink
retry forever while lag grew). Outages keep retrying: test_faults.py."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from sinks.cassandra_store import CassandraStore
from sinks.qdrant_writer import QdrantSink
from sinks.vector_stores import open_vector_store
from deploy.pipeline import stop_process
from streams.kafka import BatchProducer, make_consumer, make_producer, read_to_end
from streams.serde import default_serde
from streams.topics import DEAD_LETTER, SCORED, topic_name
from tests.integration.conftest import free_port, metric_sum, scrape, start_worker, wait_for
from tests.integration.test_redrive import scored_memory, send_scored

pytestmark = pytest.mark.integration


def dead_letters_of(settings, stage: str, source_topic: str) -> list[dict]:
    serde = default_serde()
    out = []
    for m in read_to_end(settings, topic_name(DEAD_LETTER)):
        _, rec = serde.decode(m.value(), "DeadLetter")
        if rec["stage"] == stage and rec["source_topic"] == source_topic:
            out.append(rec)
    return out


def test_a_record_cassandra_refuses_is_dead_lettered_and_the_batch_lands(live):
    port = free_port()
    w = start_worker(live, "cassandra-sink", MURMUR_METRICS_PORT=str(port), MURMUR_SINK_REFUSAL_TRIES="2")
    settings = w.settings
    sim = f"rf-{uuid.uuid4().hex[:8]}"
    store = CassandraStore(settings)
    try:
        scored = topic_name(SCORED, settings.namespace)
        serde = default_serde()
        records = [scored_memory(sim, i) for i in range(20)]
        # Cassandra refuses a partition key longer than 65,535 bytes: this agent id is one.
        records[7] = {**records[7], "agent_id": "x" * 70_000}
        send_scored(settings, records)
        wait_for(lambda: store.count_memories(sim) == 19, timeout=120, what="the 19 good memories", worker=w)
        wait_for(lambda: len(dead_letters_of(settings, "cassandra-sink", scored)) == 1, timeout=60,
                 what="the refused record's dead letter", worker=w)
        (dead,) = dead_letters_of(settings, "cassandra-sink", scored)
        # refused while the driver encodes the key (a 16-bit length), or by the server
        assert "65535" in dead["reason"], dead["reason"]
        assert serde.decode(dead["raw"], "ScoredMemory")[1]["memory_id"] == records[7]["memory_id"]
        samples = scrape(f"http://127.0.0.1:{port}/metrics")
        assert metric_sum(samples["murmur_sink_refused"], sink="cassandra-sink") == 1
        # the sink goes on: a later record lands
        send_scored(settings, [scored_memory(sim, 99)])
        wait_for(lambda: store.count_memories(sim) == 20, timeout=60, what="a record after the refused one", worker=w)
    finally:
        store.close()
        stop_process(live, w.name)


def test_a_vector_the_store_refuses_is_dead_lettered_and_the_batch_lands(live, tmp_path):
    ns = f"it{uuid.uuid4().hex[:8]}"
    settings = live.model_copy(update={"namespace": ns, "qdrant_path": tmp_path / "qdrant", "sink_refusal_tries": 2})
    from streams.kafka import create_topics

    create_topics(settings, namespace=ns)
    scored = topic_name(SCORED, ns)
    serde = default_serde()
    dim = settings.llm.embed_dim
    sim = f"rv-{uuid.uuid4().hex[:8]}"
    records = []
    for i in range(10):
        r = scored_memory(sim, i)
        # the fourth carries a vector of the wrong dimension: Qdrant refuses it
        size = dim + 3 if i == 3 else dim
        r["embedding_f32"] = np.random.default_rng(i).random(size, dtype=np.float32).astype("<f4").tobytes()
        records.append(r)
    send_scored(settings, records)

    store = open_vector_store(settings)
    sink = QdrantSink(settings, store)
    consumer = make_consumer(settings, group=sink.group, **{"enable.partition.eof": False})
    dead = BatchProducer(make_producer(settings))
    consumer.subscribe([scored])
    try:
        read = 0
        for _ in range(60):
            read += sink.run_once(consumer, dead, timeout=1.0)
            if read >= 10:
                break
        assert read == 10
        assert store.count(sim) == 9
        (letter,) = dead_letters_of(settings, "qdrant-sink", scored)
        assert letter["reason"].startswith("refused by the vector store") and "dimension" in letter["reason"]
        assert serde.decode(letter["raw"], "ScoredMemory")[1]["memory_id"] == records[3]["memory_id"]
        # committed: a new consumer of the group has nothing left to read
        assert sink.run_once(consumer, dead, timeout=1.0) == 0
    finally:
        consumer.close()
        store.close()
