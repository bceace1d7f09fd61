"""One size limit end to end (settings.max_record_bytes): the publisher,
the producer, the topics Murmur creates, the broker and the consumers agree
on it. A record near the limit goes all the way through; one over it is
dead-lettered with a clear reason while the rest of the input is published
(it used to abort the whole publish: the producer allowed 8 MiB, the broker
1 MiB)."""

from __future__ import annotations

import json
import uuid

import pytest
from confluent_kafka.admin import ConfigResource, ResourceType

from bench.common import post_events
from connectors.publish_cli import Options, run_publish
from deploy.pipeline import stop_process
from sinks.cassandra_store import CassandraStore
from streams.kafka import admin, read_to_end
from streams.serde import default_serde
from streams.topics import AGENT_LOG, DEAD_LETTER, topic_name
from tests.integration.conftest import start_worker, wait_for

pytestmark = pytest.mark.integration


def post_line(sim: str, i: int, content: str) -> str:
    record = dict(post_events(sim, i + 1, agents=3)[i].record, content=content)
    return json.dumps({"type": "Post", **record})


def test_created_topics_carry_the_limit(live):
    client = admin(live)
    (future,) = client.describe_configs([ConfigResource(ResourceType.TOPIC, topic_name(AGENT_LOG))]).values()
    configs = future.result(timeout=30)
    assert int(configs["max.message.bytes"].value) == live.kafka_message_bytes >= live.max_record_bytes


def test_a_record_near_the_limit_goes_through_and_one_over_it_is_dead_lettered(live, tmp_path):
    w = start_worker(live, "agent,cassandra-sink")
    store = CassandraStore(w.settings)
    sim = f"size-{uuid.uuid4().hex[:8]}"
    limit = live.max_record_bytes
    near = "n" * (limit - 4096)  # with the other fields, just under the limit
    over = "o" * (limit + 10)
    path = tmp_path / "posts.jsonl"
    path.write_text("\n".join([post_line(sim, 0, "small one"), post_line(sim, 1, over),
                               post_line(sim, 2, near), post_line(sim, 3, "small two")]) + "\n")
    try:
        counts = run_publish(live, [path], Options(sim=sim)).counts  # returns: the publish was not aborted
        assert counts.published["Post"] == 3 and counts.dead_lettered == 1
        (reason,) = counts.dead_letter_reasons
        assert reason.startswith("record over the size limit")
        serde = default_serde()
        dead = [serde.decode(m.value(), "DeadLetter")[1] for m in read_to_end(live, topic_name(DEAD_LETTER))]
        (letter,) = [d for d in dead if d["stage"] == "publisher" and d["sim_id"] == sim]
        assert letter["source_ref"].endswith(":2") and "over the size limit" in letter["reason"]
        assert "MURMUR_MAX_RECORD_BYTES" in letter["reason"] and len(letter["raw"]) <= limit // 2
        # the record near the limit: through the producer, the broker, the agent stage's consumer and
        # producer (ScoredMemory adds an embedding), the sink's consumer, into Cassandra
        wait_for(lambda: store.count_memories(sim, kinds=("post",)) == 3, timeout=120,
                 what="the three posts, the one near the limit included", worker=w)
        contents = {m["content"][:1] for a in store.agents(sim) for m in store.memories(sim, a, limit=100)}
        assert "n" in contents
    finally:
        store.close()
        stop_process(live, w.name)


def test_a_topic_made_before_the_limit_is_aligned_by_topics_create(live):
    from confluent_kafka.admin import NewTopic

    from streams.kafka import ensure_topics

    name = f"it-size-{uuid.uuid4().hex[:8]}"
    client = admin(live)
    client.create_topics([NewTopic(name, 1, 1, config={"max.message.bytes": "1048588"})])[name].result(timeout=30)
    assert ensure_topics(live, {name: (1, {})}) == {name: f"exists (max.message.bytes set to {live.kafka_message_bytes})"}
    (future,) = client.describe_configs([ConfigResource(ResourceType.TOPIC, name)]).values()
    assert int(future.result(timeout=30)["max.message.bytes"].value) == live.kafka_message_bytes
    assert ensure_topics(live, {name: (1, {})}) == {name: "exists"}  # aligned once
    client.delete_topics([name])[name].result(timeout=30)


def test_a_changelog_made_before_segment_limits_is_aligned(live):
    """A changelog created with Kafka's segment defaults (1 GiB, 7 days) is
    never compacted in a run of hours; `ensure_topics` closes its segments
    as streams/topics.py COMPACT_CONFIG says, and leaves its policy alone."""
    from confluent_kafka.admin import NewTopic

    from streams.kafka import ensure_topics
    from streams.topics import COMPACT_CONFIG, changelog_config

    name = f"it-changelog-{uuid.uuid4().hex[:8]}"
    client = admin(live)
    client.create_topics([NewTopic(name, 1, 1, config={"cleanup.policy": "compact"})])[name].result(timeout=30)
    result = ensure_topics(live, {name: (1, changelog_config())})[name]
    assert result.startswith("exists (") and "segment.ms set to 600000" in result
    (future,) = client.describe_configs([ConfigResource(ResourceType.TOPIC, name)]).values()
    have = future.result(timeout=30)
    assert {k: have[k].value for k in COMPACT_CONFIG} == COMPACT_CONFIG
    assert have["cleanup.policy"].value == "compact"
    assert ensure_topics(live, {name: (1, changelog_config())}) == {name: "exists"}  # aligned once
    client.delete_topics([name])[name].result(timeout=30)
