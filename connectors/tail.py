"""``murmur tail``: decode any Murmur topic for live monitoring.

Reads by partition assignment (no consumer group commits), so tailing never
disturbs the processors' offsets.
"""

from __future__ import annotations

import base64
import json
import sys
from dataclasses import dataclass
from typing import Callable, Iterator, TextIO

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, KafkaError, TopicPartition

from connectors.timeparse import iso
from streams.errors import DecodeError, MurmurError
from streams.kafka import make_consumer
from streams.serde import AvroSerde, default_serde
from streams.settings import Settings
from streams.topics import ALL, topic_name

ALIASES = {spec.name.split(".")[1]: spec for spec in ALL}  # short aliases: "agent-log", "scored", "dead-letter", ...


@dataclass(frozen=True)
class TailFilter:
    sim: str | None = None
    agent: str | None = None
    type: str | None = None

    def match(self, type_name: str, record: dict) -> bool:
        if self.type and type_name.lower() != self.type.lower():
            return False
        if self.sim and record.get("sim_id") != self.sim:
            return False
        if self.agent and record.get("agent_id") != self.agent:
            return False
        return True


def resolve_topics(names: list[str], namespace: str = "") -> list[str]:
    out = []
    for name in names:
        spec = ALIASES.get(name)
        out.append(topic_name(spec, namespace) if spec else name)
    return out


def iter_messages(settings: Settings, topics: list[str], *, from_beginning: bool, follow: bool,
                  poll_timeout: float = 1.0) -> Iterator:
    consumer = make_consumer(settings)
    try:
        md = consumer.list_topics(timeout=10)
        missing = [t for t in topics if t not in md.topics]
        if missing:
            known = ", ".join(sorted(t for t in md.topics if not t.startswith("__")))
            raise MurmurError(f"no such topic: {', '.join(missing)} (known: {known}); run `murmur topics create`")
        start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        parts = [TopicPartition(t, p, start) for t in topics for p in md.topics[t].partitions]
        consumer.assign(parts)
        at_end: set[tuple[str, int]] = set()
        while True:
            msg = consumer.poll(poll_timeout)
            if msg is None:
                if not follow and len(at_end) == len(parts):
                    return
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add((msg.topic(), msg.partition()))
                    if not follow and len(at_end) == len(parts):
                        return
                    continue
                raise MurmurError(f"Kafka error: {msg.error()}")
            at_end.discard((msg.topic(), msg.partition()))
            yield msg
    finally:
        consumer.close()


def render(fmt: str, topic: str, partition: int, offset: int, type_name: str, record: dict) -> str:
    if fmt == "json":
        out = {"type": type_name, **record, "_topic": topic, "_partition": partition, "_offset": offset}
        return json.dumps(out, ensure_ascii=False, default=_json_default)
    head = f"{topic} p{partition}@{offset} {iso(record['ts']) if isinstance(record.get('ts'), int) else '-'}"
    who = " ".join(str(record[k]) for k in ("sim_id", "agent_id") if record.get(k))
    rnd = f" r{record['round']}" if "round" in record else ""
    body = _summary(type_name, record)
    return f"{head} {type_name} {who}{rnd} {body}".rstrip()


def _summary(type_name: str, r: dict) -> str:
    def clip(text: str, n: int = 100) -> str:
        text = " ".join(str(text).split())
        return text if len(text) <= n else text[: n - 1] + "…"

    if type_name in ("Post", "Observation"):
        return f"{r['action']}: {clip(r['content'])}"
    if type_name == "ScoredMemory":
        return f"{r['kind']} importance={r['importance']}{' (fallback)' if r['importance_fallback'] else ''} by {r['scorer']}: {clip(r['content'], 80)}"
    if type_name == "Reflection":
        return f"[{r['trigger']}] {clip(r['content'])} (sources {len(r['source_ids'])})"
    if type_name == "Conflict":
        return f"{r['new_memory_id'][:8]} contradicts {r['old_memory_id'][:8]}: {clip(r['reason'], 80)}"
    if type_name == "Verdict":
        return f"{r['direction']} ratio={r['support_ratio']:+.3f} confidence={r['confidence']:.3f} posts={r['post_count']}"
    if type_name == "RoundMarker":
        return r["kind"]
    if type_name == "Persona":
        return f"{r['archetype']} credibility={r['credibility']} stance={r['initial_stance']:+.2f}"
    if type_name == "LlmCall":
        return f"{r['role']} {r['model']} {r['status']} {r['latency_ms']:.0f}ms tokens={r['prompt_tokens']}+{r['completion_tokens']}"
    if type_name == "DeadLetter":
        where = r.get("source_ref") or f"{r.get('source_topic')}:{r.get('source_partition')}@{r.get('source_offset')}"
        return f"{r['stage']} {where} [{r.get('field') or '-'}] {clip(r['reason'])}"
    if type_name == "Checkpoint":
        return f"v{r['format_version']} sim={r['sim_id'] or '-'} round={r['round']} groups={len(r['group_offsets'])}"
    return clip(json.dumps(r, default=_json_default))


def _json_default(value):
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(type(value).__name__)


def tail(settings: Settings, topics: list[str], *, filt: TailFilter, from_beginning: bool, follow: bool,
         max_events: int | None, fmt: str, out: TextIO = sys.stdout, serde: AvroSerde | None = None,
         on_undecodable: Callable[[str], None] | None = None) -> int:
    """Print matching events; return how many were printed."""
    serde = serde or default_serde()
    printed = 0
    for msg in iter_messages(settings, resolve_topics(topics, settings.namespace), from_beginning=from_beginning, follow=follow):
        try:
            type_name, record = serde.decode(msg.value())
        except DecodeError as exc:
            if on_undecodable:
                on_undecodable(f"{msg.topic()} p{msg.partition()}@{msg.offset()}: {exc}")
            continue
        if not filt.match(type_name, record):
            continue
        out.write(render(fmt, msg.topic(), msg.partition(), msg.offset(), type_name, record) + "\n")
        out.flush()
        printed += 1
        if max_events is not None and printed >= max_events:
            break
    return printed
