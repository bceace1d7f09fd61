"""What every processor shares: decoding with dead-lettering, producing
outputs through confluent-kafka, and the flush that makes a batch safe to ack.

Commit order (at-least-once with idempotent effects), in one place:
  1. decode the batch; bad records become dead letters (produced, not dropped);
  2. compute outputs (pure functions, LLM calls);
  3. produce outputs and dead letters, then flush until Kafka acked them all;
  4. return to ``stream.take_events``: Faust acks the inputs, then commits.
A crash before 4 re-delivers the batch; outputs carry deterministic ids so the
second delivery writes the same rows.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from faust.streams import _current_event
from faust.types import EventT

from streams.dead_letter import dead_letter_record
from streams.contract import check_ranges
from streams.errors import DecodeError
from streams.kafka import BatchProducer, make_producer
from streams.metrics import BATCH_SECONDS, DEAD_LETTERS, EVENT_AGE_SECONDS, EVENTS_IN, EVENTS_OUT
from streams.serde import AvroSerde, default_serde
from streams.settings import Settings
from streams.topics import DEAD_LETTER, LLM_CALLS, TopicSpec, agent_key, topic_name


@dataclass(frozen=True)
class Incoming:
    type_name: str
    record: dict
    topic: str
    partition: int
    offset: int
    key: bytes | None
    event: Any = field(default=None, compare=False, repr=False)


class Runtime:
    def __init__(self, settings: Settings, *, serde: AvroSerde | None = None) -> None:
        self.settings = settings
        self.serde = serde or default_serde()
        self.producer = BatchProducer(make_producer(settings))
        self._llm = None
        # Per table: agents of one worker share this runtime and interleave at
        # every await, so each table's pending writes are kept apart.
        self._pending_state: dict[int, list[tuple[bytes, Any, Incoming]]] = {}

    # -- LLM -------------------------------------------------------------------
    @property
    def llm(self):
        """The shared LLM client; every call it makes becomes an LlmCall event,
        produced with the batch that caused it."""
        if self._llm is None:
            from streams.llm import make_llm

            self._llm = make_llm(self.settings, on_call=self._on_llm_call)
        return self._llm

    @property
    def embedder_name(self) -> str:
        llm = self.settings.llm
        return {"deterministic": "deterministic-hash-v1", "minilm": "minilm-l6-v2"}.get(
            llm.embed_backend, f"vllm:{llm.embed.model}")

    def _on_llm_call(self, record: dict) -> None:
        self.producer.send(self.topic(LLM_CALLS), record["role"].encode(), self.serde.encode("LlmCall", record))

    # -- per-agent state ---------------------------------------------------------
    def remember(self, table, key: bytes, state: Any, last: Incoming) -> None:
        """Queue a table write; :meth:`commit_state` applies it after the flush."""
        self._pending_state.setdefault(id(table), []).append((key, state, last))

    def commit_state(self, table) -> None:
        for key, state, last in self._pending_state.pop(id(table), []):
            # Faust sends a table write to the changelog partition of the
            # *current event*; in a batch that is not the event that carried
            # this key, so we make it so. Changelog partition == source
            # partition is what lets Faust rebuild the right state on the
            # right worker after a rebalance.
            token = _current_event.set(weakref.ref(last.event)) if last.event is not None else None
            try:
                table[key] = state
            finally:
                if token is not None:
                    _current_event.reset(token)

    def topic(self, spec: TopicSpec) -> str:
        return topic_name(spec, self.settings.namespace)

    def decode_events(self, events: list[EventT], *, expected: tuple[str, ...], stage: str) -> list[Incoming]:
        out = []
        for ev in events:
            msg = ev.message
            EVENTS_IN.labels(stage, msg.topic).inc()
            try:
                type_name, record = self.serde.decode(ev.value, expected)
                check_ranges(type_name, record)
            except DecodeError as exc:
                self.dead_letter(stage=stage, reason=str(exc), raw=ev.value or b"", field=exc.field,
                                 topic=msg.topic, partition=msg.partition, offset=msg.offset, key=ev.key)
                continue
            out.append(Incoming(type_name, record, msg.topic, msg.partition, msg.offset, ev.key, ev))
        return out

    def dead_letter(self, *, stage: str, reason: str, raw: bytes, field: str | None = None, topic: str | None = None,
                    partition: int | None = None, offset: int | None = None, key: bytes | None = None,
                    sim_id: str | None = None) -> None:
        record = dead_letter_record(stage=stage, reason=reason, raw=raw if isinstance(raw, bytes) else bytes(raw or b""),
                                    field=field, source_topic=topic, source_partition=partition, source_offset=offset,
                                    sim_id=sim_id, key=key if isinstance(key, bytes) else None)
        DEAD_LETTERS.labels(stage, reason.split(":", 1)[0][:40]).inc()
        self.producer.send(topic_name(DEAD_LETTER), (topic or stage).encode(), self.serde.encode("DeadLetter", record))

    def dead_letter_all(self, stage: str, items: list[Incoming], exc: BaseException) -> None:
        """Inputs whose processing raised: kept whole in the dead-letter topic
        with the error, so one poison record cannot stop a processor."""
        reason = f"{type(exc).__name__}: {exc}"
        for inc in items:
            raw = inc.event.value if inc.event is not None else b""
            self.dead_letter(stage=stage, reason=reason, raw=raw or b"", topic=inc.topic, partition=inc.partition,
                             offset=inc.offset, key=inc.key, sim_id=inc.record.get("sim_id"))

    def emit(self, stage: str, spec: TopicSpec, key: bytes, record: dict) -> None:
        name = self.topic(spec)
        self.producer.send(name, key, self.serde.encode(spec.value, record))
        EVENTS_OUT.labels(stage, name).inc()

    async def flush(self) -> None:
        await self.producer.flush()

    def observe_batch(self, stage: str, started: float, batch: list[Incoming]) -> None:
        """Batch time, and each input's age at the end of its processing,
        from its Kafka timestamp (when it was produced: records' own ``ts``
        is simulation time)."""
        now = time.time()
        BATCH_SECONDS.labels(stage).observe(time.perf_counter() - started)
        ages = EVENT_AGE_SECONDS.labels(stage)
        for inc in batch:
            ts = getattr(getattr(inc.event, "message", None), "timestamp", None)
            if isinstance(ts, (int, float)) and ts > 0:
                ages.observe(max(0.0, now - ts))


def with_defaults(stored, empty: dict) -> dict:
    """Stored per-key state over its defaults, unknown keys dropped: state
    written by an older version of a processor stays readable."""
    if isinstance(stored, dict):
        empty.update({k: v for k, v in stored.items() if k in empty})
    return empty


def by_agent(batch: list[Incoming]) -> dict[bytes, list[Incoming]]:
    """Group a batch by agent, keeping each agent's events in arrival order."""
    groups: dict[bytes, list[Incoming]] = {}
    for inc in batch:
        groups.setdefault(agent_key(inc.record["sim_id"], inc.record["agent_id"]), []).append(inc)
    return groups


Output = tuple[TopicSpec, bytes, dict]  # (topic, key, record)


def register_per_agent(app, rt: Runtime, *, stage: str, inputs: tuple[TopicSpec, ...], expected: tuple[str, ...],
                       table_name: str, load_state, handle, batch_size: int = 1000, within: float = 0.25) -> None:
    """A Faust agent whose state is per agent (reflection, contradiction,
    stance): batches grouped by agent, agents handled concurrently (their
    LLM calls overlap), one agent's events strictly in order.

    ``handle(state, items) -> (state, outputs)`` is awaited per agent; an
    agent whose handling raises is dead-lettered with the error and keeps its
    state. Outputs are flushed before the state is written, and the state
    before Faust acks the inputs (see the commit order above).
    """
    import asyncio

    table = app.Table(table_name, default=None, partitions=rt.settings.topic_partitions,
                      key_type=bytes)  # raw keys (sim/agent); values JSON

    @app.agent(app.topic(*(rt.topic(t) for t in inputs)), name=stage)
    async def per_agent(stream):
        async for events in stream.take_events(batch_size, within=within):
            started = time.perf_counter()
            groups = by_agent(rt.decode_events(events, expected=expected, stage=stage))
            results = await asyncio.gather(*(handle(load_state(table.get(key)), items)
                                             for key, items in groups.items()), return_exceptions=True)
            for (key, items), result in zip(groups.items(), results):
                if isinstance(result, BaseException):
                    rt.dead_letter_all(stage, items, result)
                    continue
                state, outputs = result
                for spec, out_key, record in outputs:
                    rt.emit(stage, spec, out_key, record)
                rt.remember(table, key, state, items[-1])
            await rt.flush()
            rt.commit_state(table)
            rt.observe_batch(stage, started, [i for items in groups.values() for i in items])
