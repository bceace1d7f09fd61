"""Live view of one simulation: what ``GET /simulations/{sim}/stream`` sends.

The stream tails Murmur's topics from their end offsets at connection time
with a plain consumer (no group: watching never moves a processor's
offsets) and keeps the records of one simulation, told apart by key (every
key starts with the sim id, see streams.topics) without decoding them. It
sends, as Server-Sent Events:

- ``snapshot``  once, first: the verdicts, reflections and conflicts the read
  model already holds, so a page opened mid-run has its history (taken after
  the consumer is positioned, so nothing falls between the two; a verdict in
  both is the same round and replaces itself);
- ``counts``    every ``tick_s``: events seen per topic since the start;
- ``verdict``, ``reflection``, ``conflict``: each as it is produced;
- ``lag``       every ``lag_s``: consumer lag of the deployment's processor
  groups (``settings.processor_groups``), one query shared by all viewers.

Every event's SSE ``id`` is the stream's position (the next offset of each
partition it reads, :func:`position_token`). A client that reconnects with
``Last-Event-ID`` (browsers do it by themselves) goes on from there: what was
produced while it was away is sent, and no snapshot.

Private memories never leave: observations are only counted, and a conflict
is sent without the two memories' texts.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

from confluent_kafka import TopicPartition

from streams.errors import DecodeError
from streams.kafka import end_offsets, group_lag, make_consumer
from streams.serde import AvroSerde, default_serde
from streams.settings import Settings
from streams.topics import (AGENT_LOG, CONFLICTS, DEAD_LETTER, REFLECTIONS, ROUNDS, SCORED, STANCES, VERDICTS, TopicSpec,
                            topic_name)

log = logging.getLogger(__name__)

MONITORED: tuple[TopicSpec, ...] = (AGENT_LOG, ROUNDS, SCORED, STANCES, REFLECTIONS, CONFLICTS, VERDICTS, DEAD_LETTER)
VERDICT_FIELDS = ("round", "ts", "support_ratio", "confidence", "direction", "magnitude", "post_count",
                  "author_count", "flips")
REFLECTION_FIELDS = ("event_id", "agent_id", "round", "ts", "content", "importance", "trigger")
CONFLICT_FIELDS = ("event_id", "agent_id", "round", "ts", "reason", "similarity", "confidence")


def pick(record: dict, names: tuple[str, ...]) -> dict:
    return {n: record.get(n) for n in names}


@dataclass
class SimFilter:
    """Turns raw records of the monitored topics into monitor events."""

    settings: Settings
    sim_id: str
    serde: AvroSerde = field(default_factory=default_serde)
    counts: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        ns = self.settings.namespace
        self.by_topic = {topic_name(spec, ns): spec for spec in MONITORED}
        self._sim = self.sim_id.encode()

    def ours(self, spec: TopicSpec, key: bytes | None, value: bytes | None) -> dict | None | bool:
        """True (count only), a decoded record, or False (another sim's)."""
        if spec is DEAD_LETTER:
            try:
                _, rec = self.serde.decode(value, "DeadLetter")
            except DecodeError:
                return False
            return rec if rec.get("sim_id") == self.sim_id else False
        if key is None or not (key == self._sim or key.startswith(self._sim + b"/")):
            return False
        if spec in (VERDICTS, REFLECTIONS, CONFLICTS):
            try:
                return self.serde.decode(value, spec.value)[1]
            except DecodeError:
                return False
        return True

    def feed(self, topic: str, key: bytes | None, value: bytes | None) -> tuple[str, dict] | None:
        spec = self.by_topic.get(topic)
        if spec is None or value is None:
            return None
        got = self.ours(spec, key, value)
        if got is False:
            return None
        self.counts[spec.name] += 1
        if spec is VERDICTS:
            return "verdict", pick(got, VERDICT_FIELDS)
        if spec is REFLECTIONS:
            return "reflection", pick(got, REFLECTION_FIELDS)
        if spec is CONFLICTS:
            return "conflict", pick(got, CONFLICT_FIELDS)
        return None


def snapshot(store, sim_id: str, *, limit: int = 20) -> dict:
    """History from the read model (blocking: Cassandra reads)."""
    verdicts = [pick(v, VERDICT_FIELDS) for v in store.verdicts(sim_id)][::-1]
    conflicts = [pick(c, CONFLICT_FIELDS) for c in store.conflicts(sim_id, limit=limit)]
    reflections = []
    for agent in store.agents(sim_id)[:200]:
        reflections += [pick(r, REFLECTION_FIELDS) for r in store.reflections(sim_id, agent, limit=3)]
    reflections.sort(key=lambda r: r["ts"] or 0, reverse=True)
    return {"verdicts": verdicts, "reflections": reflections[:limit], "conflicts": conflicts}


def lag_report(settings: Settings) -> list[dict]:
    from streams.topology import configured_groups, input_topics, resolve
    from streams.app import group_id

    out = []
    for group, processors in configured_groups(settings):
        topics = input_topics(settings, resolve(processors))
        parts = group_lag(settings, group_id(settings, group), topics)
        out.append({"group": group, "lag": sum(p.lag for p in parts),
                    "partitions": [{"topic": p.topic, "partition": p.partition, "lag": p.lag} for p in parts]})
    return out


class SharedLag:
    """One lag report per ``max_age_s`` for all open streams of a settings
    (namespace, groups): each viewer would otherwise query every group's
    offsets on its own. The lock makes concurrent viewers wait for one query
    instead of each starting theirs."""

    def __init__(self, max_age_s: float, report=lag_report, clock=time.monotonic) -> None:
        self.max_age_s = max_age_s
        self._report = report
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: dict[tuple, tuple[float, list[dict]]] = {}

    def get(self, settings: Settings) -> list[dict]:
        key = (settings.kafka_bootstrap, settings.namespace, tuple(settings.processor_groups))
        with self._lock:
            at, value = self._cached.get(key, (None, None))
            if at is None or self._clock() - at >= self.max_age_s:
                value = self._report(settings)
                self._cached[key] = (self._clock(), value)
            return value


SHARED_LAG = SharedLag(max_age_s=4.0)


TOKEN_VERSION = "p1"


def position_token(topics: list[str], positions: dict[tuple[str, int], int]) -> str:
    """Where the stream stands, as an SSE event id: the next offset of every
    partition it reads (topics by their index in ``topics``)."""
    index = {t: i for i, t in enumerate(topics)}
    parts = sorted((index[t], p, o) for (t, p), o in positions.items() if t in index)
    return TOKEN_VERSION + ":" + ",".join(f"{i}.{p}.{o}" for i, p, o in parts)


def parse_token(token: str, topics: list[str]) -> dict[tuple[str, int], int]:
    """The positions of :func:`position_token`; ValueError if it is not one."""
    version, _, body = token.strip().partition(":")
    if version != TOKEN_VERSION:
        raise ValueError(f"not a stream position (expected {TOKEN_VERSION}:...)")
    out = {}
    for item in filter(None, body.split(",")):
        i, p, o = (int(x) for x in item.split("."))
        if not 0 <= i < len(topics) or p < 0 or o < 0:
            raise ValueError(f"position {item!r} is out of range")
        out[(topics[i], p)] = o
    return out


async def events(settings: Settings, sim_id: str, store, *, tick_s: float = 1.0, lag_s: float = 5.0,
                 resume_from: str | None = None) -> AsyncIterator[tuple[str, Any, str]]:
    """(event name, payload, position token) triples until the client goes
    away. With ``resume_from`` (a token the client saw last, its
    Last-Event-ID) the stream goes on from there: no snapshot, nothing
    missed in between; a token it cannot read starts afresh, and the
    snapshot says why."""
    flt = SimFilter(settings, sim_id)
    topics = list(flt.by_topic)
    consumer = make_consumer(settings, **{"enable.partition.eof": False})
    try:
        # Positioned explicitly at today's end offsets (not OFFSET_END, which
        # resolves lazily) so the snapshot below and the tail meet.
        positions = await asyncio.to_thread(end_offsets, settings, topics)
        resumed, why = False, None
        if resume_from:
            try:
                given = parse_token(resume_from, topics)
                # A partition added since starts at its end; one gone is dropped.
                positions.update({tp: o for tp, o in given.items() if tp in positions})
                resumed = True
            except ValueError as exc:
                why = f"Last-Event-ID not resumed: {exc}"
        consumer.assign([TopicPartition(t, p, off) for (t, p), off in sorted(positions.items())])
        if not resumed:
            shot = await asyncio.to_thread(snapshot, store, sim_id)
            yield "snapshot", {**shot, **({"resume_error": why} if why else {})}, position_token(topics, positions)
        next_tick = next_lag = 0.0
        while True:
            msgs = await asyncio.to_thread(consumer.consume, 500, 0.25)
            for m in msgs:
                if m.error():
                    continue
                positions[(m.topic(), m.partition())] = m.offset() + 1
                out = flt.feed(m.topic(), m.key(), m.value())
                if out is not None:
                    yield (*out, position_token(topics, positions))
            token = position_token(topics, positions)
            now = time.monotonic()
            if now >= next_tick:
                next_tick = now + tick_s
                yield "counts", {"ts": int(time.time() * 1000), "topics": dict(flt.counts)}, token
            if now >= next_lag and settings.processor_groups:
                next_lag = now + lag_s
                try:
                    yield "lag", {"groups": await asyncio.to_thread(SHARED_LAG.get, settings)}, token
                except Exception as exc:  # Kafka away: say so, keep streaming
                    yield "lag", {"groups": [], "error": str(exc)}, token
    finally:
        await asyncio.to_thread(consumer.close)
