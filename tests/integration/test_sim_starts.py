"""A replay reads from where its simulation's events begin, on the real
broker: the first recorded start of the simulation (``sim.starts.v1``, one
record per publisher session) less the margin, through Kafka's time index.
It reads fewer records than a read from the beginning and finds exactly the
same events, at the same offsets, also when a resumed publish re-sent some
and when an event's timestamp is out of order within the margin; a
simulation whose events no Murmur publisher sent is read from the
beginning, and says so."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer

from connectors import synthetic
from connectors.publisher import Publisher
from eval.replay import read_sim
from streams.serde import default_serde
from streams.sim_starts import recorded_start
from streams.topics import AGENT_LOG, SIM_STARTS, agent_key, topic_name

pytestmark = pytest.mark.integration
CASE = Path(__file__).resolve().parents[2] / "eval" / "cases" / "ireland_smoking_ban_2004"


def events_of(sim: str, agents: int = 6, rounds: int = 2):
    return synthetic.generate(CASE, sim_id=sim, seed=3, agents=agents, rounds=rounds).events


def seen(read) -> list[tuple[tuple, str, str]]:
    """Each event where it was read, by position: the order across
    partitions depends on the fetches, within one it is the log's."""
    return sorted((pos, t, r["event_id"]) for (t, r), pos in zip(read.events, read.positions))


@pytest.fixture
def settings(live):
    # A margin the test can wait out: the default is a minute.
    return live.model_copy(update={"replay_start_margin_s": 0.5})


def test_a_replay_reads_from_the_first_start_and_finds_every_event(settings):
    sim, other = f"st-{uuid.uuid4().hex[:8]}", f"st-{uuid.uuid4().hex[:8]}"
    Publisher(settings).publish(events_of(other, agents=20))  # earlier records, not this simulation's
    time.sleep(1.0)  # past the margin
    run = events_of(sim)
    Publisher(settings).publish(run[: len(run) // 2])
    first = recorded_start(settings, sim)
    time.sleep(0.3)
    Publisher(settings).publish(run)  # resumed: a second session re-sends the first half, then the rest

    assert first is not None and recorded_start(settings, sim) == first, "the first session's start stands"
    indexed = read_sim(settings, sim)
    whole = read_sim(settings, sim, from_beginning=True)
    assert indexed.read_from.startswith("the simulation's first start"), indexed.read_from
    assert whole.read_from == "the beginning, as asked"
    assert seen(indexed) == seen(whole), "the same events at the same offsets"
    assert {r["event_id"] for _, r in indexed.events} == {e.record["event_id"] for e in run}
    assert indexed.read < whole.read, (indexed.read, whole.read)
    assert indexed.read <= whole.read - 60, "the other simulation's records, published before, are not read"


def test_an_event_stamped_before_the_start_within_the_margin_is_still_found(settings):
    sim = f"st-{uuid.uuid4().hex[:8]}"
    run = events_of(sim)
    Publisher(settings).publish(run)
    start = recorded_start(settings, sim)
    # Another client's clock, 0.3 s behind: a later record with an earlier
    # timestamp in the same partition (Kafka's time index still finds it).
    late = next(e for e in run if e.type_name == "Post")
    record = {**late.record, "event_id": f"{late.record['event_id']}-late", "content": "a later post"}
    serde, topic = default_serde(), topic_name(AGENT_LOG)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    producer.produce(topic, key=agent_key(sim, record["agent_id"]), timestamp=start - 300,
                     value=serde.encode("Post", record, topic=topic))
    assert producer.flush(30) == 0

    indexed = read_sim(settings, sim)
    assert record["event_id"] in {r["event_id"] for _, r in indexed.events}
    assert seen(indexed) == seen(read_sim(settings, sim, from_beginning=True))


def test_a_simulation_no_publisher_started_is_read_from_the_beginning(settings):
    sim = f"st-{uuid.uuid4().hex[:8]}"
    serde, topic = default_serde(), topic_name(AGENT_LOG)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    posts = [e for e in events_of(sim) if e.type_name == "Post"][:3]
    for e in posts:  # some other client: no start record
        producer.produce(topic, key=e.key, value=serde.encode("Post", e.record, topic=topic))
    assert producer.flush(30) == 0

    read = read_sim(settings, sim)
    assert recorded_start(settings, sim) is None
    assert read.read_from.startswith("the beginning: sim.starts.v1 has no start"), read.read_from
    assert sorted(r["event_id"] for _, r in read.events) == sorted(e.record["event_id"] for e in posts)


def test_an_unreadable_start_record_is_no_start(settings):
    """Bytes on the start topic that are not a SimStart (another client's,
    a corrupted record) conclude nothing: with no readable start the
    simulation is read from the beginning, and says so."""
    sim = f"st-{uuid.uuid4().hex[:8]}"
    serde, topic = default_serde(), topic_name(AGENT_LOG)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    producer.produce(topic_name(SIM_STARTS), key=f"{sim}/garbage".encode(), value=b"\x00not avro at all")
    post = next(e for e in events_of(sim) if e.type_name == "Post")
    producer.produce(topic, key=post.key, value=serde.encode("Post", post.record, topic=topic))
    assert producer.flush(30) == 0

    read = read_sim(settings, sim)
    assert recorded_start(settings, sim) is None
    assert read.read_from.startswith("the beginning: sim.starts.v1 has no start"), read.read_from
    assert [r["event_id"] for _, r in read.events] == [post.record["event_id"]]
