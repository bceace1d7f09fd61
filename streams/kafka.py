"""confluent-kafka plumbing shared by the CLI, connectors and processors:
admin (topic creation, lag), an idempotent producer, a plain consumer."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from streams.errors import ConfigError, ServiceUnavailable
from streams.kafka_auth import librdkafka_conf
from streams.settings import Settings
from streams.topics import ALL, TopicSpec, topic_name


# librdkafka writes its own log lines to stderr; a refused connection prints
# one per retry. Long-running processes keep them; a short CLI command calls
# quiet() and reports the error its call raises, once.
_client_conf: dict = {}


_last_error: list[KafkaError] = []


def _remember(err: KafkaError) -> None:
    _last_error[:] = [err]


def quiet() -> None:
    """librdkafka's log lines off; its errors kept (last_error) so the one line
    a command prints can say *why* (a refused login reads, without this, as a
    bare "broker transport failure")."""
    _client_conf["log_level"] = 0
    _client_conf["error_cb"] = _remember


def log_through(logger) -> None:
    """librdkafka's lines through a Python logger (so a worker's log stays one
    JSON object a line, streams/logs.py) instead of raw stderr; a client
    hands them over when it is polled, which a long-running one is."""
    _client_conf["logger"] = logger


def last_error() -> KafkaError | None:
    return _last_error[0] if _last_error else None


def admin(settings: Settings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.kafka_bootstrap, **_client_conf, **librdkafka_conf(settings)})


def check_kafka(settings: Settings, timeout: float = 5.0) -> int:
    """Number of brokers answering a metadata request; raises if none."""
    try:
        md = admin(settings).list_topics(timeout=timeout)
    except KafkaException as exc:
        raise ServiceUnavailable(
            f"Kafka at {settings.kafka_bootstrap} did not answer ({exc}); start it with `murmur services up`"
        ) from None
    return len(md.brokers)


def create_topics(settings: Settings, specs: tuple[TopicSpec, ...] = ALL, namespace: str = "") -> dict[str, str]:
    """Create missing topics; existing ones are left alone (idempotent)."""
    return ensure_topics(settings, {topic_name(s, namespace): (s.partitions or settings.topic_partitions, s.config())
                                    for s in specs})


def min_insync_replicas(settings: Settings) -> int | None:
    """min.insync.replicas for the topics Murmur creates; None leaves the
    broker's default. With 3 replicas or more, 2 (at most replication-1): an
    acks=all write is then on two brokers before it counts, so losing the
    leader loses nothing, and one broker may be down without stopping writes."""
    rf, wanted = settings.topic_replication, settings.topic_min_insync_replicas
    if wanted is not None:
        if wanted > rf:
            # Kafka would accept the topic and then refuse every acks=all write.
            raise ConfigError(f"MURMUR_TOPIC_MIN_INSYNC_REPLICAS={wanted} exceeds MURMUR_TOPIC_REPLICATION={rf}: "
                              "no write could ever succeed")
        return wanted
    return min(rf - 1, 2) if rf >= 3 else None


def ensure_topics(settings: Settings, wanted: dict[str, tuple[int, dict[str, str]]]) -> dict[str, str]:
    """Create the missing ones of ``{name: (partitions, config)}`` and wait
    until every partition has a leader."""
    min_isr = min_insync_replicas(settings)
    extra = {"min.insync.replicas": str(min_isr)} if min_isr is not None else {}
    extra["max.message.bytes"] = str(settings.kafka_message_bytes)  # what producers may send (settings.max_record_bytes)
    client = admin(settings)
    check_kafka(settings)
    existing = set(client.list_topics(timeout=10).topics)
    result = {name: "exists" for name in wanted if name in existing}
    new = [NewTopic(name, num_partitions=parts, replication_factor=settings.topic_replication,
                    config={**extra, **config})
           for name, (parts, config) in wanted.items() if name not in existing]
    if new:
        for name, fut in client.create_topics(new, request_timeout=30).items():
            try:
                fut.result()
                result[name] = "created"
            except KafkaException as exc:
                # A concurrent creator won the race: still idempotent.
                if "TOPIC_ALREADY_EXISTS" in str(exc):
                    result[name] = "exists"
                else:
                    raise
    _align_configs(client, {n: {**extra, **wanted[n][1]} for n in wanted if result.get(n) == "exists"}, result)
    _wait_for_leaders(client, list(wanted))
    return dict(sorted(result.items()))


# What an existing topic is brought in line with on every `topics create`:
# the record limit (producers may send up to it) and how a compacted topic
# closes segments (streams/topics.py COMPACT_CONFIG). Both bound resources
# and are safe to change on a live topic; retention and cleanup policy are a
# decision about data, never changed behind the owner's back.
ALIGNED_CONFIGS = ("max.message.bytes", "min.cleanable.dirty.ratio", "segment.ms", "segment.bytes")


def _align_configs(client: AdminClient, wanted: dict[str, dict[str, str]], result: dict[str, str]) -> None:
    """Topics created before a limit changed (or before there was one) get
    the current values of :data:`ALIGNED_CONFIGS` that ``wanted`` names."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

    if not wanted:
        return
    found = client.describe_configs([ConfigResource(ResourceType.TOPIC, n) for n in wanted])
    changes: dict[str, dict[str, str]] = {}
    for res, fut in found.items():
        have = fut.result(timeout=30)
        stale = {k: v for k, v in wanted[res.name].items()
                 if k in ALIGNED_CONFIGS and (k not in have or have[k].value != v)}
        if stale:
            changes[res.name] = stale
    if not changes:
        return
    for res, fut in client.incremental_alter_configs(
            [ConfigResource(ResourceType.TOPIC, n, incremental_configs=[
                ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in sorted(cfg.items())])
             for n, cfg in changes.items()]).items():
        fut.result(timeout=30)
        result[res.name] = "exists (" + ", ".join(f"{k} set to {v}" for k, v in sorted(changes[res.name].items())) + ")"


def _wait_for_leaders(client: AdminClient, topics: list[str], timeout: float = 30.0) -> None:
    """A topic is usable once every partition has a leader; creation returns
    before that, and an offset query in between fails with NOT_LEADER."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        md = client.list_topics(timeout=10).topics
        if all(t in md and md[t].partitions and all(p.leader >= 0 for p in md[t].partitions.values()) for t in topics):
            return
        time.sleep(0.1)
    raise ServiceUnavailable(f"topics without leaders after {timeout}s: {topics}")


def make_producer(settings: Settings, **overrides) -> Producer:
    conf = {
        "bootstrap.servers": settings.kafka_bootstrap,
        # Idempotent producer: a broker-side retry never duplicates a record.
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "zstd",
        # Java-compatible key hashing, as Faust and every JVM client use: a key
        # lands on the same partition whoever produces it.
        "partitioner": "murmur2_random",
        # One limit end to end (settings.max_record_bytes): the broker and the
        # topics take what a producer may send.
        "message.max.bytes": settings.kafka_message_bytes,
        **_client_conf,
        **librdkafka_conf(settings),
    }
    conf.update(overrides)
    return Producer(conf)


def make_consumer(settings: Settings, group: str | None = None, **overrides) -> Consumer:
    conf = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": group or f"murmur-tail-{uuid.uuid4().hex[:8]}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        # Never fewer bytes per partition than one record may have.
        "max.partition.fetch.bytes": max(1024 * 1024, settings.kafka_message_bytes),
        **_client_conf,
        **librdkafka_conf(settings),
    }
    conf.update(overrides)
    return Consumer(conf)


class DeliveryFailed(ServiceUnavailable): ...


class BatchProducer:
    """Produce a batch and wait until Kafka acknowledged every record.

    A processor calls :meth:`flush` before it returns to ``stream.take``; only
    then does Faust ack (and later commit) the inputs, so a crash in between
    re-delivers inputs rather than losing outputs (at-least-once).
    """

    def __init__(self, producer: Producer) -> None:
        self._producer = producer
        self._errors: list[str] = []

    def _on_delivery(self, err, msg) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err}")

    def send(self, topic: str, key: bytes | None, value: bytes, partition: int | None = None) -> None:
        where = {} if partition is None else {"partition": partition}
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, on_delivery=self._on_delivery, **where)
                return
            except BufferError:
                # Local queue full: serve delivery callbacks, then retry.
                self._producer.poll(0.05)

    def flush_blocking(self, timeout: float = 60.0) -> None:
        remaining = self._producer.flush(timeout)
        if remaining:
            raise DeliveryFailed(f"{remaining} records not delivered within {timeout}s")
        if self._errors:
            errors, self._errors = self._errors, []
            raise DeliveryFailed(f"{len(errors)} records failed: {errors[0]}")

    async def flush(self, timeout: float = 60.0) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.flush_blocking, timeout)


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int
    end: int

    @property
    def lag(self) -> int:
        return max(0, self.end - max(self.committed, 0))


def group_lag(settings: Settings, group: str, topics: list[str], **overrides) -> list[PartitionLag]:
    """Committed offset vs end offset of every partition of ``topics`` for
    ``group`` (``overrides``: client properties, e.g. a sampler's log_level 0)."""
    consumer = make_consumer(settings, group=group, **overrides)
    try:
        md = consumer.list_topics(timeout=10)
        parts = [
            TopicPartition(t, p)
            for t in topics
            if t in md.topics
            for p in sorted(md.topics[t].partitions)
        ]
        committed = committed_offsets(consumer, parts) if parts else []
        out = []
        for tp in committed:
            _low, high = watermarks(consumer, tp)
            out.append(PartitionLag(tp.topic, tp.partition, tp.offset, high))
        return out
    finally:
        consumer.close()


def _retrying(call, *, retriable, timeout: float, pause: float):
    """``call()``, again after ``pause`` while it raises a KafkaException that
    ``retriable`` accepts, until ``timeout`` seconds have passed."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except KafkaException as exc:
            if not retriable(exc) or time.monotonic() > deadline:
                raise
            time.sleep(pause)


_COORDINATOR_SETTLING = (KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                         KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError._TIMED_OUT)


def committed_offsets(consumer: Consumer, parts: list[TopicPartition], timeout: float = 30.0) -> list[TopicPartition]:
    """A group's committed offsets; retried while the group coordinator is
    being elected or loaded (a fresh broker answers NOT_COORDINATOR or
    COORDINATOR_LOAD_IN_PROGRESS for a while)."""
    return _retrying(lambda: consumer.committed(parts, timeout=10), timeout=timeout, pause=0.5,
                     retriable=lambda exc: bool(exc.args) and exc.args[0].code() in _COORDINATOR_SETTLING)


def watermarks(consumer: Consumer, tp: TopicPartition, timeout: float = 30.0) -> tuple[int, int]:
    """Low and high offsets; retried while a new topic's leader settles (a
    fresh broker answers NOT_LEADER for a moment after creation)."""
    def retriable(exc: KafkaException) -> bool:
        flagged = bool(exc.args) and getattr(exc.args[0], "retriable", lambda: False)()
        return flagged or "LEADER" in str(exc) or "UNKNOWN" in str(exc)

    return _retrying(lambda: consumer.get_watermark_offsets(tp, timeout=10, cached=False), timeout=timeout,
                     pause=0.2, retriable=retriable)


def end_offsets(settings: Settings, topics: list[str]) -> dict[tuple[str, int], int]:
    consumer = make_consumer(settings)
    try:
        md = consumer.list_topics(timeout=10)
        out = {}
        for t in topics:
            if t not in md.topics:
                continue
            for p in md.topics[t].partitions:
                out[(t, p)] = watermarks(consumer, TopicPartition(t, p))[1]
        return out
    finally:
        consumer.close()


def start_group_at_end(settings: Settings, group: str, topics: list[str]) -> dict[tuple[str, int], int]:
    """Commit the current end offsets of ``topics`` for a group that has not
    started yet, so its first worker skips the backlog deterministically
    (unlike auto.offset.reset=latest, which a rebalance before the first
    commit would apply again, skipping events). For benchmarks and tests."""
    ends = end_offsets(settings, topics)
    parts = [TopicPartition(t, p, off) for (t, p), off in sorted(ends.items())]
    # A consumer outside the group (no subscribe) may commit for a group with
    # no members: the simple-consumer commit Kafka has always allowed.
    consumer = make_consumer(settings, group=group)
    try:
        # A cluster just started is still electing the group's coordinator:
        # NOT_COORDINATOR for a moment (seen on the 3-broker cluster in CI).
        _retrying(lambda: consumer.commit(offsets=parts, asynchronous=False), timeout=30.0, pause=0.5,
                  retriable=lambda exc: bool(exc.args) and exc.args[0].code() in _COORDINATOR_SETTLING)
    finally:
        consumer.close()
    return ends


def offsets_at_time(settings: Settings, topics: list[str], ts_ms: int,
                    ends: dict[tuple[str, int], int] | None = None) -> dict[tuple[str, int], int]:
    """Per partition of ``topics``: the first offset whose timestamp is at or
    after ``ts_ms`` (Kafka's time index; the earliest such offset even where
    timestamps are out of order); a partition with none gets its end offset
    (``ends``: the caller's, when it has read them)."""
    ends = end_offsets(settings, topics) if ends is None else ends
    if not ends:
        return {}
    consumer = make_consumer(settings)
    try:
        found = consumer.offsets_for_times([TopicPartition(t, p, ts_ms) for (t, p) in ends], timeout=30)
    finally:
        consumer.close()
    out = {}
    for tp in found:
        if tp.error is not None:
            raise ServiceUnavailable(f"Kafka could not look up {tp.topic}[{tp.partition}] by time: {tp.error}")
        out[(tp.topic, tp.partition)] = tp.offset if tp.offset >= 0 else ends[(tp.topic, tp.partition)]
    return out


def read_to_end(settings: Settings, topic: str, *, since_ms: int | None = None):
    """Every record of ``topic``, partition by partition in offset order,
    up to its end offsets at the call (a snapshot of the log, not a tail);
    with ``since_ms``, from each partition's first record at or after that
    time (:func:`offsets_at_time`)."""
    ends = {tp: e for tp, e in end_offsets(settings, [topic]).items() if e > 0}
    starts = offsets_at_time(settings, [topic], since_ms, ends) if since_ms is not None and ends else {}
    ends = {tp: e for tp, e in ends.items() if e > starts.get(tp, 0)}
    out = []
    # consume() waits until it has as many records as asked or its timeout
    # passed: asking for no more than are left makes a small topic's read
    # return at once (it took the whole second: 1.07 s for a start record).
    left = sum(e - starts.get(tp, 0) for tp, e in ends.items())
    consumer = make_consumer(settings, **{"enable.partition.eof": False})
    try:
        consumer.assign([TopicPartition(t, p, starts.get((t, p), 0)) for (t, p) in ends])
        while ends:
            msgs = consumer.consume(max(1, min(1000, left)), 0.05)  # fewer left than offsets: compaction's gaps
            left -= len(msgs)
            for m in msgs:
                if m.error():
                    continue
                out.append(m)
                if m.offset() + 1 >= ends.get((m.topic(), m.partition()), 0):
                    ends.pop((m.topic(), m.partition()), None)
            if not msgs and ends:  # past the end without its last offset: compaction removed it
                for tp in consumer.position([TopicPartition(t, p) for (t, p) in ends]):
                    if tp.offset >= ends[(tp.topic, tp.partition)]:
                        ends.pop((tp.topic, tp.partition))
    finally:
        consumer.close()
    return sorted(out, key=lambda m: (m.partition(), m.offset()))

