"""``murmur sim delete``: one simulation removed from every view
(docs/adr/0008-deleting-a-simulation.md).

* the Cassandra read model: every table that holds it (sinks/cassandra_delete.py);
* the vector view: its points, by a filter on ``sim_id`` (either engine);
* the Faust tables' state: a tombstone for each of its keys still live on
  this namespace's changelog topics, on the partition the key is on, so a
  worker that starts rebuilds its tables without the simulation;
* the compacted Murmur topics keyed by simulation (latest persona per agent,
  the simulation's question, publisher positions): a tombstone per live key.

The append-only topics (the agent log, rounds, the derived events, the
dead letters) keep its records: Kafka cannot delete single records from a
``cleanup.policy=delete`` topic. The delete says so; a consumer reset or a
``murmur replay`` of them brings the simulation back.

It refuses while a consumer group of the namespace has members (a worker,
or the API's vector sink): a running worker holds the tables in memory and
writes them back, and the in-process vector store belongs to the API.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Protocol

from confluent_kafka import KafkaError, TopicPartition

from streams.app import group_id
from streams.errors import MurmurError
from streams.kafka import admin, make_consumer, make_producer, watermarks
from streams.settings import Settings
from streams.topics import ALL, DEAD_LETTER, LEGACY, TopicSpec, topic_name
from streams.topology import STAGES


class PipelineRunning(MurmurError): ...


def sim_keyed_compacted(specs: tuple[TopicSpec, ...] = ALL) -> list[TopicSpec]:
    """Compacted topics whose key starts with the simulation: a tombstone per
    key removes the simulation from them."""
    return [s for s in specs if s.cleanup == "compact" and s.key.split("/")[0] == "sim_id"]


def append_only(specs: tuple[TopicSpec, ...] = ALL) -> list[TopicSpec]:
    """Delete-policy topics: their records of the simulation stay."""
    return [s for s in specs if s.cleanup == "delete"]


def changelog_pattern(settings: Settings) -> re.Pattern:
    """Changelog topics of this namespace's Faust tables, whatever the group
    (``<namespace->murmur-<group>-<table>-changelog``)."""
    tables = sorted({t for s in STAGES.values() for t in s.tables})
    return re.compile(rf"^{re.escape(group_id(settings, ''))}.+-({'|'.join(map(re.escape, tables))})-changelog$")


def of_sim(key: bytes | None, sim_id: str) -> bool:
    """Whether a Kafka key is the simulation's: ``sim`` itself, or
    ``sim/<agent>``, ``sim/<source>``, ``sim/<event id>``."""
    if key is None:
        return False
    sim = sim_id.encode()
    return key == sim or key.startswith(sim + b"/")


def blocking_groups(members: dict[str, int], settings: Settings) -> list[str]:
    """Consumer groups of this namespace with members, i.e. running."""
    prefix = group_id(settings, "")
    return sorted(g for g, n in members.items() if n and g.startswith(prefix))


def namespace_groups(settings: Settings) -> dict[str, int]:
    """Consumer groups of this namespace -> their members."""
    client = admin(settings)
    listed = client.list_consumer_groups(request_timeout=10).result()
    ids = [g.group_id for g in listed.valid if g.group_id.startswith(group_id(settings, ""))]
    members = {}
    if ids:
        for gid, fut in client.describe_consumer_groups(ids, request_timeout=10).items():
            members[gid] = len(fut.result().members)
    return members


def running_groups(settings: Settings) -> list[str]:
    return blocking_groups(namespace_groups(settings), settings)


def unprocessed(settings: Settings, groups: list[str]) -> dict[str, int]:
    """Records each stopped group has not processed yet on its input topics
    (the dead-letter topic aside: only a redrive's progress is kept there).
    Some may be the simulation's, written again when the group starts."""
    from confluent_kafka import ConsumerGroupTopicPartitions

    from streams.kafka import end_offsets

    client = admin(settings)
    out = {}
    for gid in groups:
        committed = client.list_consumer_group_offsets([ConsumerGroupTopicPartitions(gid)],
                                                       request_timeout=10)[gid].result().topic_partitions or []
        parts = [tp for tp in committed if tp.topic != topic_name(DEAD_LETTER) and tp.offset >= 0]
        ends = end_offsets(settings, sorted({tp.topic for tp in parts}))
        behind = sum(max(0, ends.get((tp.topic, tp.partition), 0) - tp.offset) for tp in parts)
        if behind:
            out[gid] = behind
    return out


def _scan(settings: Settings, topic: str, sim_id: str, timeout: float = 120.0) -> dict[tuple[int, bytes], bool]:
    """(partition, key) of the simulation's keys on a topic -> whether the
    latest record of the key is live (not a tombstone)."""
    consumer = make_consumer(settings, **{"enable.partition.eof": False})
    try:
        md = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if md is None or md.error is not None:
            return {}
        parts = [TopicPartition(topic, p) for p in sorted(md.partitions)]
        ends = {tp.partition: watermarks(consumer, tp)[1] for tp in parts}
        starts = {tp.partition: watermarks(consumer, tp)[0] for tp in parts}
        left = {p for p in ends if ends[p] > starts[p]}
        consumer.assign([TopicPartition(topic, p, starts[p]) for p in left])
        latest: dict[tuple[int, bytes], bool] = {}
        deadline = time.monotonic() + timeout
        while left:
            if time.monotonic() > deadline:
                raise MurmurError(f"reading {topic} took over {timeout:.0f}s; nothing was deleted from it")
            for m in consumer.consume(1000, 0.5):
                if m.error():
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        raise MurmurError(f"reading {topic}: {m.error()}")
                    continue
                if of_sim(m.key(), sim_id):
                    latest[(m.partition(), m.key())] = m.value() is not None
            # The position, not the last offset seen: compaction leaves gaps.
            for tp in consumer.position([TopicPartition(topic, p) for p in left]):
                if tp.offset >= ends[tp.partition]:
                    left.discard(tp.partition)
        return latest
    finally:
        consumer.close()


AGENT_TABLES = ("agent-state", "verdict-authors")  # Faust tables keyed by sim/agent (the others: by sim, or sim/event id)


def names_agents(topic: str, settings: Settings) -> bool:
    """Whether a topic's keys are ``sim/<agent>``: agent-keyed compacted
    topics and the changelogs of per-agent tables."""
    if any(topic == topic_name(s, settings.namespace) for s in sim_keyed_compacted() if s.key == "sim_id/agent_id"):
        return True
    return any(topic.endswith(f"-{t}-changelog") for t in AGENT_TABLES) and bool(changelog_pattern(settings).match(topic))


def agents_in(keys, sim_id: str) -> set[str]:
    """Agent ids named by ``sim/<agent>`` keys of the agent-keyed topics."""
    prefix = sim_id.encode() + b"/"
    return {k[len(prefix):].decode("utf-8", "replace") for k in keys if k.startswith(prefix)}


@dataclass
class Deleted:
    sim_id: str
    cassandra: dict[str, int] = field(default_factory=dict)  # table -> rows
    vectors: int = 0
    tombstones: dict[str, int] = field(default_factory=dict)  # topic -> keys
    kept: list[str] = field(default_factory=list)  # append-only topics that still hold its records
    behind: dict[str, int] = field(default_factory=dict)  # stopped group -> records it has not processed

    def lines(self) -> list[str]:
        out = [f"simulation {self.sim_id} deleted:"]
        out += [f"  cassandra {table}: {n} rows" for table, n in sorted(self.cassandra.items())]
        out.append(f"  vector store: {self.vectors} points")
        out += [f"  tombstones on {topic}: {n} keys" for topic, n in sorted(self.tombstones.items())]
        out.append("kept: append-only topics cannot delete single records; its records stay on "
                   + ", ".join(self.kept) + ". A consumer reset or `murmur replay` of them brings it back.")
        out += [f"warning: consumer group {g} has {n} records not processed yet; any of {self.sim_id}'s among "
                "them are written again when it starts (let the pipeline drain, then delete again)"
                for g, n in sorted(self.behind.items())]
        return out


class Views(Protocol):
    """The read model's side of a delete (sinks/sim_views.py): the platform
    reaches the views only through this, so it imports nothing above it."""

    def delete_rows(self, sim_id: str, agents: set[str]) -> dict[str, int]: ...

    def delete_vectors(self, sim_id: str) -> int: ...


def delete_simulation(settings: Settings, sim_id: str, views: Views) -> Deleted:
    """Remove ``sim_id`` from every view (see the module's docstring).
    Idempotent: a second run finds nothing more to remove."""
    if not sim_id:
        raise MurmurError("give the simulation id to delete")
    groups = namespace_groups(settings)
    running = blocking_groups(groups, settings)
    if running:
        raise PipelineRunning(
            f"consumer groups of this namespace are running: {', '.join(running)}. Stop the workers and the API "
            "(its vector sink) first: a running worker holds agent state in memory and would write it back")
    client = admin(settings)
    names = set(client.list_topics(timeout=10).topics)
    done = Deleted(sim_id, kept=[n for n in (topic_name(s, settings.namespace) for s in append_only(ALL + LEGACY))
                                 if n in names], behind=unprocessed(settings, sorted(groups)))
    topics = [topic_name(s, settings.namespace) for s in sim_keyed_compacted()]
    topics += sorted(n for n in names if changelog_pattern(settings).match(n))
    producer = make_producer(settings)
    failures: list[str] = []
    agents: set[str] = set()

    def delivered(err, msg) -> None:
        if err is not None:
            failures.append(f"{msg.topic()}[{msg.partition()}]: {err}")

    for topic in topics:
        if topic not in names:
            continue
        latest = _scan(settings, topic, sim_id)
        if names_agents(topic, settings):
            agents |= agents_in((k for _, k in latest), sim_id)
        live = sorted(pk for pk, alive in latest.items() if alive)
        for partition, key in live:
            # On the partition the key is on: that is where compaction and a
            # Faust table's recovery look for it.
            producer.produce(topic, key=key, value=None, partition=partition, on_delivery=delivered)
            producer.poll(0)
        done.tombstones[topic] = len(live)
    left = producer.flush(60)
    if left or failures:
        raise MurmurError(f"tombstones not acknowledged by Kafka ({left} pending, {len(failures)} failed"
                          f"{': ' + failures[0] if failures else ''}); run the delete again")
    done.cassandra = views.delete_rows(sim_id, agents)
    done.vectors = views.delete_vectors(sim_id)
    return done
