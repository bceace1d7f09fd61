"""Redrive: processor dead letters sent back to the topic they came from.

A dead letter of a processor or sink keeps the input whole (key, value
bytes, headers, topic, partition, offset; :mod:`streams.dead_letter`). Once
the cause is fixed (a model that was down, a bug), :func:`redrive` produces
each one again to its source topic and partition with its key, value and
headers, plus a count of how often it was redriven: a record that fails again
comes back as a new dead letter carrying that count, and is not sent once more
when it reached ``settings.redrive_limit``.

Progress is a consumer group's committed offsets on the dead-letter topic
(one group per ``--reason``/``--source-topic`` filter), committed only after
Kafka acknowledged every redriven record: a second run starts where the first
stopped and redrives nothing twice. A crash between the two redrives some
again on the next run; the pipeline is at-least-once with keyed, idempotent
writes (deterministic event ids, upserts), so a record processed twice
changes nothing.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, TopicPartition

from streams.app import group_id
from streams.dead_letter import reason_label
from streams.errors import DecodeError, MurmurError
from streams.kafka import committed_offsets, make_consumer, make_producer, watermarks
from streams.serde import AvroSerde, default_serde
from streams.settings import Settings
from streams.topics import DEAD_LETTER, topic_name

COUNT_HEADER = "murmur-redrive-count"  # how many times the record was redriven (ASCII integer)
OF_HEADER = "murmur-redrive-of"  # the dead letter it was redriven from (its event id)
PUBLISHER = "publisher"  # the stage name of publisher dead letters (input lines, not records)
CONTRACT_ERRORS = frozenset({DecodeError.__name__})


@dataclass(frozen=True)
class Filters:
    reason: str | None = None  # part of the reason, any case
    source_topic: str | None = None  # the physical topic the input was read from
    since_ms: int | None = None  # dead-lettered at or after (ms since the epoch)

    def matches(self, dl: dict) -> str | None:
        """None when the dead letter passes every filter, else which one it fails."""
        if self.since_ms is not None and dl["ts"] < self.since_ms:
            return "dead-lettered before --since"
        if self.reason and self.reason.lower() not in dl["reason"].lower():
            return "another reason than --reason"
        if self.source_topic and dl.get("source_topic") != self.source_topic:
            return "another source topic than --source-topic"
        return None


def redrive_count(dl: dict) -> int:
    """Times the dead letter's record was redriven already (its count header)."""
    for h in reversed(dl.get("headers") or []):
        if h["key"] == COUNT_HEADER:
            try:
                return int((h["value"] or b"0").decode())
            except ValueError:
                return 0
    return 0


def not_redrivable(dl: dict) -> str | None:
    """Why this dead letter cannot be redriven at all, or None when it can:
    only a record read from Kafka and kept whole, rejected for something
    other than its own content."""
    if dl["stage"] == PUBLISHER or not dl.get("source_topic"):
        return "publisher input: a line that never was a record (fix the file and publish it again)"
    if dl.get("source_partition") is None or dl.get("source_offset") is None or not dl.get("raw"):
        return "original record not kept whole"
    if dl.get("error_type") in CONTRACT_ERRORS:
        return "the record broke the contract (decode or range check): the same bytes would fail the same way"
    return None


def decide(dl: dict, filters: Filters, *, limit: int) -> str | None:
    """None: redrive it. Otherwise why it is skipped."""
    return filters.matches(dl) or not_redrivable(dl) or (
        f"redriven {limit} times already (MURMUR_REDRIVE_LIMIT={limit})" if redrive_count(dl) >= limit else None)


def redrive_headers(dl: dict) -> list[tuple[str, bytes | None]]:
    """The record's own headers, then the redrive's: its count one higher
    and the dead letter it came from (earlier redrive headers replaced)."""
    own = [(h["key"], h["value"]) for h in dl.get("headers") or [] if h["key"] not in (COUNT_HEADER, OF_HEADER)]
    return own + [(COUNT_HEADER, str(redrive_count(dl) + 1).encode()), (OF_HEADER, dl["event_id"].encode())]


def progress_group(settings: Settings, filters: Filters) -> str:
    """The consumer group whose offsets on the dead-letter topic are the
    redrive's progress: one per reason/source-topic filter, so redriving one
    kind first leaves the others for a later run. ``--since`` is not part of
    it (a relative time would make a new group at every run)."""
    if not (filters.reason or filters.source_topic):
        return group_id(settings, "redrive")
    digest = hashlib.sha256(repr((filters.reason or "", filters.source_topic or "")).encode()).hexdigest()[:10]
    return group_id(settings, f"redrive-{digest}")


@dataclass
class Report:
    group: str
    examined: int = 0
    redriven: Counter = field(default_factory=Counter)  # source topic -> records
    skipped: Counter = field(default_factory=Counter)  # why -> records
    dry_run: bool = False

    def lines(self) -> list[str]:
        verb = "would redrive" if self.dry_run else "redriven"
        out = [f"{self.examined} dead letters examined (progress: consumer group {self.group})",
               f"{verb}: {sum(self.redriven.values())}"]
        out += [f"  {topic}: {n}" for topic, n in sorted(self.redriven.items())]
        out.append(f"skipped: {sum(self.skipped.values())}")
        out += [f"  {n} {why}" for why, n in self.skipped.most_common()]
        return out


def _dead_letter_parts(consumer, settings: Settings) -> list[TopicPartition]:
    name = topic_name(DEAD_LETTER)
    md = consumer.list_topics(name, timeout=10).topics.get(name)
    if md is None or md.error is not None or not md.partitions:
        raise MurmurError(f"no topic {name}: create the topics with `murmur topics create`")
    return [TopicPartition(name, p) for p in sorted(md.partitions)]


def read_dead_letters(consumer, starts: dict[int, int], ends: dict[int, int], serde: AvroSerde):
    """(message, dead letter or None when unreadable) from each partition's
    start up to its end offset at the call: a snapshot, not a tail."""
    name = topic_name(DEAD_LETTER)
    left = {p: e for p, e in ends.items() if starts[p] < e}
    consumer.assign([TopicPartition(name, p, starts[p]) for p in left])
    while left:
        for msg in consumer.consume(500, 1.0):
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    raise MurmurError(f"reading {name}: {msg.error()}")
                continue
            if msg.partition() not in left or msg.offset() >= left[msg.partition()]:
                continue
            try:
                yield msg, serde.decode(msg.value(), "DeadLetter")[1]
            except DecodeError:
                yield msg, None
            if msg.offset() + 1 >= left[msg.partition()]:
                del left[msg.partition()]


def redrive(settings: Settings, filters: Filters = Filters(), *, dry_run: bool = False,
            limit: int | None = None, serde: AvroSerde | None = None) -> Report:
    """Redrive what the group has not looked at yet, up to the dead-letter
    topic's end at the call; commit the group's offsets there once every
    redriven record is on Kafka (not on a dry run)."""
    limit = settings.redrive_limit if limit is None else limit
    serde = serde or default_serde()
    report = Report(progress_group(settings, filters), dry_run=dry_run)
    consumer = make_consumer(settings, group=report.group, **{"enable.partition.eof": False})
    producer = make_producer(settings)
    failures: list[str] = []

    def delivered(err, msg) -> None:
        if err is not None:
            failures.append(f"{msg.topic()}[{msg.partition()}]: {err}")

    try:
        parts = _dead_letter_parts(consumer, settings)
        # Partitions of every topic now: a dead letter of a topic since
        # deleted (a replay's namespace) is skipped, not produced to nowhere.
        partitions = {name: len(t.partitions) for name, t in consumer.list_topics(timeout=10).topics.items()}
        ends = {tp.partition: watermarks(consumer, tp)[1] for tp in parts}
        starts = {}
        for tp in committed_offsets(consumer, parts):
            starts[tp.partition] = tp.offset if tp.offset >= 0 else watermarks(consumer, tp)[0]
        for msg, dl in read_dead_letters(consumer, starts, ends, serde):
            report.examined += 1
            if dl is None:
                report.skipped["unreadable dead letter"] += 1
                continue
            why = decide(dl, filters, limit=limit)
            if why is None and dl["source_partition"] >= partitions.get(dl["source_topic"], 0):
                why = "its source topic or partition no longer exists"
            if why is not None:
                report.skipped[why] += 1
                continue
            report.redriven[dl["source_topic"]] += 1
            if not dry_run:
                # Back to the partition it was read from: the key's other
                # records are there, whoever produced them and with what partitioner.
                producer.produce(dl["source_topic"], value=dl["raw"], key=dl["key"], partition=dl["source_partition"],
                                 headers=redrive_headers(dl), on_delivery=delivered)
                producer.poll(0)
        if dry_run:
            return report
        left = producer.flush(60)
        if left or failures:
            raise MurmurError(f"redrive not acknowledged by Kafka ({left} pending, {len(failures)} failed"
                              f"{': ' + failures[0] if failures else ''}); progress not recorded, run it again")
        done = [TopicPartition(topic_name(DEAD_LETTER), p, e) for p, e in sorted(ends.items()) if e > starts[p]]
        if done:
            consumer.commit(offsets=done, asynchronous=False)
        return report
    finally:
        consumer.close()


@dataclass
class Group:
    source: str
    stage: str
    reason: str
    count: int = 0
    redrivable: int = 0
    last_ts: int = 0


def summarize(settings: Settings, *, topic: str | None = None, reason: str | None = None,
              limit: int | None = None, serde: AvroSerde | None = None) -> tuple[list[Group], int]:
    """Every dead letter on the topic, counted per source topic, stage and
    kind of reason (its metric label), most frequent first; with how many
    could be redriven (not counting the redrive limit). Also the total read."""
    serde = serde or default_serde()
    filters = Filters(reason=reason, source_topic=topic)
    groups: dict[tuple[str, str, str], Group] = {}
    total = 0
    consumer = make_consumer(settings, **{"enable.partition.eof": False})
    try:
        parts = _dead_letter_parts(consumer, settings)
        starts = {tp.partition: watermarks(consumer, tp)[0] for tp in parts}
        ends = {tp.partition: watermarks(consumer, tp)[1] for tp in parts}
        for _msg, dl in read_dead_letters(consumer, starts, ends, serde):
            total += 1
            if dl is None:
                key = ("?", "?", "unreadable dead letter")
            elif filters.matches(dl):
                continue
            else:
                key = (dl.get("source_topic") or f"({dl['stage']} input)", dl["stage"], reason_label(dl["reason"]))
            g = groups.setdefault(key, Group(*key))
            g.count += 1
            if dl is not None:
                g.redrivable += not_redrivable(dl) is None
                g.last_ts = max(g.last_ts, dl["ts"])
    finally:
        consumer.close()
    ordered = sorted(groups.values(), key=lambda g: (-g.count, g.source, g.stage, g.reason))
    return (ordered[:limit] if limit else ordered), total


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, *, now_ms: int) -> int:
    """``--since``: a duration back from now (``90s``, ``30m``, ``2h``,
    ``7d``), an ISO-8601 time (UTC unless it says otherwise) or epoch ms."""
    from datetime import datetime, timezone

    t = text.strip()
    if t[:-1].isdigit() and t[-1:] in _UNITS:
        return now_ms - int(t[:-1]) * _UNITS[t[-1]] * 1000
    if t.isdigit():
        return int(t)
    try:
        when = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--since {text!r}: give a duration (30m, 2h, 7d), an ISO time "
                         "(2026-12-05T03:00:00Z) or epoch milliseconds") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(when.timestamp() * 1000)
