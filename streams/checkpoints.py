"""Checkpoints: topic-offset snapshots.

A checkpoint records the committed offset of every input partition of a
processor group and the end offset of every table changelog partition, with
sim, round, time and a format version; it is Avro (schemas/Checkpoint.avsc)
compressed with zstd, on the compacted CHECKPOINTS topic (key: its
id), exportable to a file. A reader refuses a format version it does not
know rather than guess.

Restore puts a stopped group back at a checkpoint (see :func:`restore`).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import zstandard
from confluent_kafka import KafkaError, TopicPartition

from streams.topology import changelog_topics, input_topics, resolve
from streams.app import group_id
from streams.errors import DecodeError, MurmurError
from streams.kafka import BatchProducer, committed_offsets, end_offsets, make_consumer, make_producer
from streams.serde import AvroSerde, default_serde
from streams.settings import Settings
from streams.topics import CHECKPOINTS, LEGACY, changelog_config, topic_name

FORMAT_VERSION = 1
MAX_BYTES = 16 << 20


class CheckpointError(MurmurError): ...


def create(settings: Settings, *, processors: str = "all", group: str | None = None, sim_id: str = "",
           round_: int = -1, note: str = "") -> dict:
    names = resolve(processors)
    gid = group_id(settings, group or processors)
    topics = input_topics(settings, names)
    consumer = make_consumer(settings, group=gid)
    try:
        md = consumer.list_topics(timeout=10)
        parts = [TopicPartition(t, p) for t in topics if t in md.topics for p in sorted(md.topics[t].partitions)]
        committed = committed_offsets(consumer, parts) if parts else []
    finally:
        consumer.close()
    logs = changelog_topics(settings, group or processors, names)
    ends = end_offsets(settings, list(logs.values()))
    return {
        "event_id": f"ckpt-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}",
        "format_version": FORMAT_VERSION, "sim_id": sim_id, "round": round_, "ts": int(time.time() * 1000),
        "group_offsets": [{"group": gid, "topic": tp.topic, "partition": tp.partition, "offset": max(tp.offset, 0)}
                          for tp in committed],
        "changelog_offsets": [{"table": table, "topic": t, "partition": p, "offset": off}
                              for table, topic in sorted(logs.items()) for (t, p), off in sorted(ends.items()) if t == topic],
        "note": note,
    }


def encode(record: dict, serde: AvroSerde | None = None) -> bytes:
    data = (serde or default_serde()).encode("Checkpoint", record, topic=topic_name(CHECKPOINTS))
    return zstandard.ZstdCompressor(level=10).compress(data)


def decode(data: bytes, serde: AvroSerde | None = None) -> dict:
    try:
        raw = zstandard.ZstdDecompressor().decompress(data, max_output_size=MAX_BYTES)
    except zstandard.ZstdError as exc:
        raise CheckpointError(f"not a zstd-compressed checkpoint: {exc}") from None
    _, record = (serde or default_serde()).decode(raw, "Checkpoint")
    if record["format_version"] != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {record['event_id']} has format version {record['format_version']}; "
                              f"this Murmur reads version {FORMAT_VERSION} only: upgrade Murmur to restore it")
    return record


def save(settings: Settings, record: dict) -> None:
    save_all(settings, [record])


def save_all(settings: Settings, records: list[dict]) -> None:
    producer = BatchProducer(make_producer(settings))
    for record in records:
        producer.send(topic_name(CHECKPOINTS), record["event_id"].encode(), encode(record))
    producer.flush_blocking()


def load_all(settings: Settings) -> dict[str, bytes]:
    """Latest value per checkpoint id (the topic is compacted)."""
    consumer = make_consumer(settings)
    topic = topic_name(CHECKPOINTS)
    out: dict[str, bytes] = {}
    try:
        md = consumer.list_topics(topic, timeout=10)
        parts = [TopicPartition(topic, p, 0) for p in md.topics[topic].partitions]
        consumer.assign(parts)
        done: set[int] = set()
        while len(done) < len(parts):
            msg = consumer.poll(2.0)
            if msg is None:
                break
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    done.add(msg.partition())
                    continue
                raise CheckpointError(str(msg.error()))
            out[msg.key().decode()] = msg.value()
    finally:
        consumer.close()
    return out


class NewestByGroup:
    """Time (ms) of the newest checkpoint of each group, kept up to date by
    reading only what was added to the checkpoints topic since the last call
    (the metrics sampler asks every few seconds; the topic only grows)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.newest: dict[str, int] = {}
        self._consumer = None

    def refresh(self) -> dict[str, int]:
        if self._consumer is None:
            consumer = make_consumer(self.settings)
            topic = topic_name(CHECKPOINTS)
            md = consumer.list_topics(topic, timeout=10)
            consumer.assign([TopicPartition(topic, p, 0) for p in md.topics[topic].partitions])
            self._consumer = consumer
        while True:
            msgs = self._consumer.consume(1000, 0.2)
            if not msgs:
                return self.newest
            for m in msgs:
                if m.error() or m.value() is None:
                    continue
                try:
                    rec = decode(m.value())
                except (CheckpointError, DecodeError):
                    continue
                for group in {o["group"] for o in rec["group_offsets"]}:
                    self.newest[group] = max(self.newest.get(group, 0), rec["ts"])

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


def export(settings: Settings, checkpoint_id: str, path: Path) -> int:
    data = load_all(settings).get(checkpoint_id)
    if data is None:
        raise CheckpointError(f"no checkpoint {checkpoint_id!r}; see `murmur checkpoint list`")
    decode(data)  # refuse to export what cannot be read back
    path.write_bytes(data)
    return len(data)


def restore(settings: Settings, checkpoint_id: str) -> dict:
    """Put a stopped processor group back at a checkpoint.

    1. refuse while the group has live members (its workers must be stopped);
    2. every table changelog is cut back to the checkpoint: its records up to
       the recorded offsets, compacted (last value per key), are written to a
       fresh topic of the same name, so Faust rebuilds exactly that state;
    3. the group's committed input offsets are reset to the recorded ones.
    Started again, the processors re-read their inputs from there; outputs
    carry deterministic ids, so the read model ends where an uninterrupted
    run would have.
    """
    from confluent_kafka.admin import NewTopic

    from streams.kafka import admin, watermarks

    data = load_all(settings).get(checkpoint_id)
    if data is None:
        raise CheckpointError(f"no checkpoint {checkpoint_id!r}; see `murmur checkpoint list`")
    rec = decode(data)
    legacy = {topic_name(spec) for spec in LEGACY} & {g["topic"] for g in rec["group_offsets"]}
    if legacy:
        raise CheckpointError(f"checkpoint {checkpoint_id!r} was taken before the agent log ({', '.join(sorted(legacy))}): "
                              "its offsets cannot place the 'agent' processor; see docs/adr/0005-agent-log.md")
    groups = sorted({g["group"] for g in rec["group_offsets"]})
    client = admin(settings)
    for g in groups:
        desc = client.describe_consumer_groups([g])[g].result()
        if desc.members:
            raise CheckpointError(f"group {g} has {len(desc.members)} live member(s): stop its workers first")

    by_topic: dict[str, dict[int, int]] = {}
    for c in rec["changelog_offsets"]:
        by_topic.setdefault(c["topic"], {})[c["partition"]] = c["offset"]
    kept: dict[str, dict[int, dict[bytes, bytes]]] = {}
    consumer = make_consumer(settings)
    try:
        for topic, parts in by_topic.items():
            kept[topic] = {p: {} for p in parts}
            todo = {p: off for p, off in parts.items() if off > 0}
            if not todo:
                continue
            consumer.assign([TopicPartition(topic, p, 0) for p in todo])
            while todo:
                msgs = consumer.consume(1000, 2.0)
                if not msgs:
                    for tp in consumer.position([TopicPartition(topic, p) for p in list(todo)]):
                        if tp.offset >= todo[tp.partition]:
                            del todo[tp.partition]
                    continue
                for m in msgs:
                    if m.error() or m.partition() not in todo or m.offset() >= todo[m.partition()]:
                        continue
                    if m.value() is None:
                        kept[topic][m.partition()].pop(m.key(), None)  # tombstone
                    else:
                        kept[topic][m.partition()][m.key()] = m.value()
                    if m.offset() + 1 >= todo[m.partition()]:
                        del todo[m.partition()]
            consumer.unassign()
    finally:
        consumer.close()

    if by_topic:
        for f in client.delete_topics(list(by_topic), operation_timeout=30).values():
            f.result()
        deadline = time.monotonic() + 60
        while set(by_topic) & set(client.list_topics(timeout=10).topics):
            if time.monotonic() > deadline:
                raise CheckpointError(f"changelog topics not deleted after 60 s: {sorted(by_topic)}")
            time.sleep(0.3)
        new = [NewTopic(t, num_partitions=len(p), replication_factor=settings.topic_replication,
                        config=changelog_config())
               for t, p in by_topic.items()]
        while True:
            futures = client.create_topics(new, request_timeout=30)
            try:
                for f in futures.values():
                    f.result()
                break
            except Exception as exc:  # deletion still settling on the broker
                if "TOPIC_ALREADY_EXISTS" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        probe = make_consumer(settings)
        try:
            for t, parts in by_topic.items():
                for p in parts:
                    watermarks(probe, TopicPartition(t, p))  # leaders are up
        finally:
            probe.close()
        producer = BatchProducer(make_producer(settings, **{"enable.idempotence": True}))
        for topic, parts in kept.items():
            for p, records in parts.items():
                for k, v in records.items():
                    # send: waits when librdkafka's local queue is full (a
                    # restore of 300k records overflowed it) and records
                    # delivery errors, which flush_blocking raises.
                    producer.send(topic, k, v, partition=p)
        producer.flush_blocking()

    for g in groups:
        offsets = [TopicPartition(o["topic"], o["partition"], o["offset"]) for o in rec["group_offsets"] if o["group"] == g]
        c = make_consumer(settings, group=g)
        try:
            c.commit(offsets=offsets, asynchronous=False)
        finally:
            c.close()
    return {"checkpoint": checkpoint_id, "groups": groups, "changelogs": len(by_topic),
            "table_keys": sum(len(r) for parts in kept.values() for r in parts.values()),
            "input_partitions": len(rec["group_offsets"])}
