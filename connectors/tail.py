"""``murmur tail``: decode any Murmur topic for live monitoring, as kcat
reads any topic.

Reads by partition assignment (no consumer group commits), so tailing never
disturbs the processors' offsets. Where to start is kcat's ``-o``
(:func:`parse_offset`), in the chosen partitions (``-p``). Each record comes
with its Kafka key, headers and timestamp; formats are ``pretty``, ``json``,
``avro-json`` (Avro's own JSON encoding of the record) and ``raw`` (the value
bytes as they are). Faust's changelog topics (``*-changelog``) hold agent
state, which is decoded too (``streams.state_codec``).
"""

from __future__ import annotations

import base64
import json
import sys
from dataclasses import dataclass
from typing import Callable, Iterator, TextIO

import io
from typing import Literal

import fastavro
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, KafkaError, TopicPartition

from connectors.timeparse import iso, to_ms
from streams.errors import DecodeError, MurmurError
from streams.kafka import make_consumer
from streams.serde import AvroSerde, default_serde
from streams.settings import Settings
from streams.state_codec import unpack_value
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


FORMATS = ("pretty", "json", "avro-json", "raw")


@dataclass(frozen=True)
class Start:
    """Where reading starts in each partition."""

    kind: Literal["beginning", "end", "offset", "from_end", "time"]
    value: int = 0


def parse_offset(text: str) -> Start:
    """kcat's ``-o``: ``beginning``, ``end``, an offset ``N``, ``-N`` (N
    before the end of each partition), ``s@MS`` or ``@TIME`` (the first
    record at or after an epoch-ms or ISO 8601 time)."""
    t = text.strip()
    if t.lower() in ("beginning", "earliest"):
        return Start("beginning")
    if t.lower() in ("end", "latest"):
        return Start("end")
    if t.startswith(("s@", "@")):
        when = t.split("@", 1)[1]
        try:
            return Start("time", to_ms(int(when) if when.isdigit() else when))
        except ValueError as exc:
            raise ValueError(f"offset {text!r}: {exc}; use beginning, end, N, -N, s@EPOCH_MS or @ISO-TIME") from None
    if t.lstrip("-").isdigit():
        n = int(t)
        return Start("offset", n) if n >= 0 else Start("from_end", -n)
    raise ValueError(f"offset {text!r}: use beginning, end, N, -N, s@EPOCH_MS or @ISO-TIME")


def first_offset(start: Start, low: int, high: int) -> int:
    """The offset to read first in a partition holding [low, high), for the
    kinds that need no broker lookup; clamped to what the partition holds."""
    if start.kind == "beginning":
        return low
    if start.kind == "end":
        return high
    if start.kind == "offset":
        return min(max(start.value, low), high)
    if start.kind == "from_end":
        return max(low, high - start.value)
    raise ValueError(f"{start.kind} needs a lookup by time")


def assignment(consumer, topics: list[str], partitions: list[int] | None, start: Start) -> list[TopicPartition]:
    """The partitions to read and where each starts."""
    md = consumer.list_topics(timeout=10)
    missing = [t for t in topics if t not in md.topics]
    if missing:
        known = ", ".join(sorted(t for t in md.topics if not t.startswith("__")))
        raise MurmurError(f"no such topic: {', '.join(missing)} (known: {known}); run `murmur topics create`")
    parts = []
    for t in topics:
        have = sorted(md.topics[t].partitions)
        wanted = have if partitions is None else [p for p in partitions if p in have]
        if partitions is not None and len(wanted) < len(set(partitions)):
            raise MurmurError(f"{t} has partitions {have[0]}..{have[-1]}, not {sorted(set(partitions) - set(have))}")
        parts += [TopicPartition(t, p) for p in wanted]
    if start.kind == "time":
        found = consumer.offsets_for_times([TopicPartition(tp.topic, tp.partition, start.value) for tp in parts],
                                           timeout=10)
        # -1: nothing at or after that time in the partition; start at its end.
        return [TopicPartition(f.topic, f.partition, OFFSET_END if f.offset < 0 else f.offset) for f in found]
    if start.kind in ("beginning", "end"):
        return [TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING if start.kind == "beginning" else OFFSET_END)
                for tp in parts]
    return [TopicPartition(tp.topic, tp.partition,
                           first_offset(start, *consumer.get_watermark_offsets(tp, timeout=10)))
            for tp in parts]


def iter_messages(settings: Settings, topics: list[str], *, from_beginning: bool = False, follow: bool,
                  start: Start | None = None, partitions: list[int] | None = None,
                  poll_timeout: float = 1.0) -> Iterator:
    consumer = make_consumer(settings)
    try:
        start = start or Start("beginning" if from_beginning else "end")
        parts = assignment(consumer, topics, partitions, start)
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


@dataclass(frozen=True)
class Meta:
    """What Kafka keeps beside a record's value."""

    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    timestamp: int | None = None  # ms; None when the broker gave none
    headers: tuple[tuple[str, bytes | None], ...] = ()

    @classmethod
    def of(cls, msg) -> "Meta":
        kind, ts = msg.timestamp()
        return cls(msg.topic(), msg.partition(), msg.offset(), msg.key(), ts if kind and ts >= 0 else None,
                   tuple(msg.headers() or ()))

    def fields(self) -> dict:
        return {"_topic": self.topic, "_partition": self.partition, "_offset": self.offset, "_key": _text(self.key),
                "_timestamp": self.timestamp, "_headers": {k: _text(v) for k, v in self.headers}}


def _text(raw: bytes | None) -> str | None:
    """Bytes as text when they are UTF-8, else base64 (marked so)."""
    if raw is None:
        return None
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(raw).decode()


def render(fmt: str, meta: Meta, type_name: str, record: dict, serde: AvroSerde | None = None) -> str:
    if fmt == "json":
        return json.dumps({"type": type_name, **record, **meta.fields()}, ensure_ascii=False, default=_json_default)
    if fmt == "avro-json":
        if serde is None or serde.schema(type_name) is None:  # changelog state: no Avro schema
            return json.dumps({"type": type_name, "value": record, **meta.fields()}, ensure_ascii=False)
        buf = io.StringIO()
        fastavro.json_writer(buf, serde.schema(type_name), [record])
        return json.dumps({"type": type_name, "value": json.loads(buf.getvalue()), **meta.fields()},
                          ensure_ascii=False)
    when = iso(meta.timestamp) if meta.timestamp is not None else "-"
    key = f" key={_text(meta.key)}" if meta.key is not None else ""
    head = f"{meta.topic} p{meta.partition}@{meta.offset} {when}{key}"
    who = " ".join(str(record[k]) for k in ("sim_id", "agent_id") if isinstance(record, dict) and record.get(k))
    rnd = f" r{record['round']}" if isinstance(record, dict) and "round" in record else ""
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
    if type_name == CHANGELOG:
        state = r.get("state")
        return f"{r['table']} " + ("deleted" if state is None else clip(json.dumps(state, default=_json_default), 120))
    if type_name == "Checkpoint":
        return f"v{r['format_version']} sim={r['sim_id'] or '-'} round={r['round']} groups={len(r['group_offsets'])}"
    return clip(json.dumps(r, default=_json_default))


def _json_default(value):
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(type(value).__name__)


CHANGELOG = "AgentState"  # the "type" a changelog record is shown as


def decode(serde: AvroSerde, topic: str, key: bytes | None, value: bytes | None) -> tuple[str, dict]:
    """A record of any Murmur topic, or of a Faust changelog (agent state:
    its key names the sim and agent; a deleted key has no value)."""
    if topic.endswith("-changelog"):
        try:
            state = unpack_value(value)
        except ValueError as exc:
            raise DecodeError(str(exc)) from None
        sim, _, agent = (_text(key) or "").partition("/")
        return CHANGELOG, {"sim_id": sim, "agent_id": agent or None, "table": topic, "state": state}
    return serde.decode(value)


def tail(settings: Settings, topics: list[str], *, filt: TailFilter, from_beginning: bool = False, follow: bool,
         max_events: int | None, fmt: str, out: TextIO = sys.stdout, serde: AvroSerde | None = None,
         on_undecodable: Callable[[str], None] | None = None, start: Start | None = None,
         partitions: list[int] | None = None) -> int:
    """Print matching events; return how many were printed. ``raw`` writes
    every value as it is (no decoding, so no filter but the partition)."""
    serde = serde or default_serde()
    printed = 0
    for msg in iter_messages(settings, resolve_topics(topics, settings.namespace), from_beginning=from_beginning,
                             follow=follow, start=start, partitions=partitions):
        if fmt == "raw":
            stream = getattr(out, "buffer", None)
            if stream is not None:
                stream.write((msg.value() or b"") + b"\n")
                stream.flush()
            else:  # a text-only stream (tests): what it can hold
                out.write(_text(msg.value() or b"") + "\n")
        else:
            try:
                type_name, record = decode(serde, msg.topic(), msg.key(), msg.value())
            except DecodeError as exc:
                if on_undecodable:
                    on_undecodable(f"{msg.topic()} p{msg.partition()}@{msg.offset()}: {exc}")
                continue
            if not filt.match(type_name, record):
                continue
            out.write(render(fmt, Meta.of(msg), type_name, record, serde) + "\n")
            out.flush()
        printed += 1
        if max_events is not None and printed >= max_events:
            break
    return printed
