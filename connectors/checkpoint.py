"""Checkpoints: topic-offset snapshots.

A checkpoint records the committed offset of every input partition of a
processor group and the end offset of every table changelog partition, with
sim, round, time and a format version; it is Avro (schemas/Checkpoint.avsc)
compressed with zstd, on the compacted CHECKPOINTS topic (key: its
id), exportable to a file. A reader refuses a format version it does not
know rather than guess.

Restore (reset the groups and rebuild the tables up to these offsets) is
not implemented yet.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import zstandard
from confluent_kafka import KafkaError, TopicPartition

from processors.worker import input_topics, module, resolve
from streams.app import group_id
from streams.errors import MurmurError
from streams.kafka import BatchProducer, end_offsets, make_consumer, make_producer
from streams.serde import AvroSerde, default_serde
from streams.settings import Settings
from streams.topics import CHECKPOINTS, topic_name

FORMAT_VERSION = 1
MAX_BYTES = 16 << 20


class CheckpointError(MurmurError): ...


def changelog_topics(settings: Settings, group: str, names: list[str]) -> dict[str, str]:
    """Faust names a table's changelog ``<app id>-<table>-changelog``."""
    tables = {}
    for name in names:
        for table in getattr(module(name), "TABLES", ()):
            tables[table] = f"{group_id(settings, group)}-{table}-changelog"
    return tables


def create(settings: Settings, *, processors: str = "all", group: str | None = None, sim_id: str = "",
           round_: int = -1, note: str = "") -> dict:
    names = resolve(processors)
    gid = group_id(settings, group or processors)
    topics = input_topics(settings, names)
    consumer = make_consumer(settings, group=gid)
    try:
        md = consumer.list_topics(timeout=10)
        parts = [TopicPartition(t, p) for t in topics if t in md.topics for p in sorted(md.topics[t].partitions)]
        committed = consumer.committed(parts, timeout=10) if parts else []
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
    return zstandard.ZstdCompressor(level=10).compress((serde or default_serde()).encode("Checkpoint", record))


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
    producer = BatchProducer(make_producer(settings))
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


def export(settings: Settings, checkpoint_id: str, path: Path) -> int:
    data = load_all(settings).get(checkpoint_id)
    if data is None:
        raise CheckpointError(f"no checkpoint {checkpoint_id!r}; see `murmur checkpoint list`")
    decode(data)  # refuse to export what cannot be read back
    path.write_bytes(data)
    return len(data)
