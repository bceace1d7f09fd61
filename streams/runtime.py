"""What every stage shares: decoding with dead-lettering, producing outputs
through confluent-kafka, and the one batch loop that owns the commit order.

Commit order (at-least-once with idempotent effects), in one place,
:meth:`Runtime.process`, which every stage's Faust agent runs
(:func:`register_batches`):
  1. decode the batch; bad records become dead letters (produced, not dropped);
  2. the stage's handler decides (pure functions, LLM calls; a sink writes
     its view here, retrying while the database is away) and returns its
     :class:`Effects`; a handler that raises has its batch dead-lettered;
  3. produce outputs and dead letters, then flush until Kafka acked them all;
  4. write table state, each key to the changelog partition of the input
     that carried it (and run what holds only once the outputs are on Kafka);
  5. return to ``stream.take_events``: Faust acks the inputs, then commits.
A crash before 5 re-delivers the batch; outputs carry deterministic ids so the
second delivery writes the same rows.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from faust.streams import _current_event
from faust.types import EventT

from streams import logs, overlap, stall_guard
from streams.worker_books import snapshot
from streams.contract import check_ranges
from streams.dead_letter import dead_letter_record, reason_label
from streams.errors import DecodeError
from streams.kafka import BatchProducer, make_producer
from streams.metrics import BATCH_SECONDS, DEAD_LETTERS, EVENT_AGE_SECONDS, EVENTS_IN, EVENTS_OUT, PARTITION_RESEEKS
from streams.partition_order import PartitionOrder, in_order
from streams.serde import AvroSerde, default_serde
from streams.settings import Settings
from streams.topics import DEAD_LETTER, LLM_CALLS, TopicSpec, agent_key, topic_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Incoming:
    type_name: str
    record: dict
    topic: str
    partition: int
    offset: int
    key: bytes | None
    event: Any = field(default=None, compare=False, repr=False)


Output = tuple[TopicSpec, bytes, dict]  # (topic, key, record)


@dataclass
class Effects:
    """What a stage's handler decided for one batch; :meth:`Runtime.process`
    applies it in the commit order."""

    outputs: list[Output] = field(default_factory=list)
    state: list[tuple[Any, bytes, Any, Incoming]] = field(default_factory=list)  # (table, key, value, input)
    failed: list[tuple[list[Incoming], BaseException]] = field(default_factory=list)  # dead-lettered with the error
    after_flush: list[Callable[[], None]] = field(default_factory=list)  # what holds only once outputs are on Kafka


Handler = Callable[[list[Incoming]], Awaitable[Effects]]


class Runtime:
    def __init__(self, settings: Settings, *, serde: AvroSerde | None = None, producer: Any = None,
                 journal: Any = None) -> None:
        self.settings = settings
        self.journal = journal  # answers to give again (streams/resume_journal.py), or None
        self.serde = serde or default_serde()
        # Anything with send(topic, key, value) and an awaitable flush(): the
        # Kafka producer, or a recorder in tests that run without a broker.
        self.producer = producer if producer is not None else BatchProducer(make_producer(settings))
        self._llm = None
        self._out_counters: dict[tuple[str, str], Any] = {}
        self._in_flight = 0

    # -- LLM -------------------------------------------------------------------
    @property
    def llm(self):
        """The shared LLM client; every call it makes becomes an LlmCall event,
        produced with the batch that caused it."""
        if self._llm is None:
            from streams.llm import make_llm

            self._llm = make_llm(self.settings, on_call=self._on_llm_call)
            if self.journal is not None and self.settings.llm.backend == "vllm":
                from streams.llm.journal import ResumedLlm

                self._llm = ResumedLlm(self.journal, self.settings, self._llm)
        return self._llm

    @property
    def embedder_name(self) -> str:
        from streams.llm.embedder import embedder_name

        return embedder_name(self.settings.llm)

    async def aclose(self) -> None:
        if self._llm is not None:
            llm, self._llm = self._llm, None
            await llm.aclose()

    def _on_llm_call(self, record: dict) -> None:
        name = self.topic(LLM_CALLS)
        self.producer.send(name, record["role"].encode(), self.serde.encode("LlmCall", record, topic=name))

    # -- the batch loop ------------------------------------------------------------
    def busy(self) -> bool:
        """Whether a batch is inside :meth:`process` (the stall guard's sign
        that the worker is working, whatever Faust's books say)."""
        return self._in_flight > 0

    async def process(self, stage: str, events: list, expected: tuple[str, ...], handle: Handler) -> Effects:
        """One batch through the commit order (see the module's docstring)."""
        self._in_flight += 1
        try:
            # Every line logged while the batch is processed names the stage
            # (streams/logs.py); bound once a batch, not once an event.
            with logs.bound_contextvars(processor=stage):
                return await self._process(stage, events, expected, handle)
        finally:
            self._in_flight -= 1

    async def _process(self, stage: str, events: list, expected: tuple[str, ...], handle: Handler) -> Effects:
        started = time.perf_counter()
        batch = self.decode_events(events, expected=expected, stage=stage)
        effects = Effects()
        if batch:
            try:
                effects = await handle(batch)
            except overlap.EarlierBatchFailed:
                raise  # not this batch's fault: it is retried, never dead-lettered
            except Exception as exc:  # a bug or a poison record: keep the inputs, move on
                self.dead_letter_all(stage, batch, exc)
                effects = Effects()
        await overlap.in_order()  # overlapped batches produce in the order taken
        for spec, key, record in effects.outputs:
            self.emit(stage, spec, key, record)
        for items, exc in effects.failed:
            self.dead_letter_all(stage, items, exc)
        await self.flush()
        for done in effects.after_flush:
            done()
        produced = False
        for table, key, value, carrier in effects.state:
            produced |= self.write_state(table, key, value, carrier)
        if produced:
            await self.flush()  # what Faust does before it commits: the state is on Kafka before the inputs are acked
        self.observe_batch(stage, started, batch)
        return effects

    def write_state(self, table, key: bytes, value: Any, carrier: Incoming) -> bool:
        """Set ``key`` in a Faust table, its changelog record on the
        partition of the input that carried it (what lets Faust rebuild the
        right state on the right worker after a rebalance). True when the
        record went through this runtime's producer (flush before acking)."""
        # Faust takes a table write's partition from the *current event*; in
        # a batch that is not the event that carried this key, so we make it so.
        token = _current_event.set(weakref.ref(carrier.event)) if carrier.event is not None else None
        try:
            if table.key_serializer == "raw" and table.value_serializer == "raw":
                # Bytes in, bytes out: the record Faust would write, sent
                # through confluent-kafka. Faust's own producer (aiokafka,
                # pure Python) cost a tenth of the agent worker's CPU (B3
                # profile). Faust rebuilds its store from this changelog.
                table.data[key] = value
                self.producer.send(table.changelog_topic.get_topic_name(), key, value, partition=carrier.partition)
                return True
            table[key] = value
            return False
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
                log.warning("undecodable input dead-lettered: %s", exc,
                            extra={"topic": msg.topic, "partition": msg.partition, "offset": msg.offset})
                self.dead_letter(stage=stage, reason=str(exc), raw=ev.value or b"", field=exc.field,
                                 topic=msg.topic, partition=msg.partition, offset=msg.offset, key=ev.key,
                                 error_type=type(exc).__name__, headers=getattr(msg, "headers", None))
                continue
            out.append(Incoming(type_name, record, msg.topic, msg.partition, msg.offset, ev.key, ev))
        return out

    def dead_letter(self, *, stage: str, reason: str, raw: bytes, field: str | None = None, topic: str | None = None,
                    partition: int | None = None, offset: int | None = None, key: bytes | None = None,
                    sim_id: str | None = None, error_type: str | None = None, headers=None) -> None:
        # The error's class and the input's headers go with it: a redrive
        # (streams/redrive.py) tells contract failures from others by the
        # first, and sends the second back, its redrive count among them.
        record = dead_letter_record(stage=stage, reason=reason, raw=raw if isinstance(raw, bytes) else bytes(raw or b""),
                                    field=field, source_topic=topic, source_partition=partition, source_offset=offset,
                                    sim_id=sim_id, key=key if isinstance(key, bytes) else None,
                                    error_type=error_type, headers=headers)
        DEAD_LETTERS.labels(stage, reason_label(reason)).inc()
        dead = topic_name(DEAD_LETTER)
        self.producer.send(dead, (topic or stage).encode(), self.serde.encode("DeadLetter", record, topic=dead))

    def dead_letter_all(self, stage: str, items: list[Incoming], exc: BaseException) -> None:
        """Inputs whose processing raised: kept whole in the dead-letter topic
        with the error, so one poison record cannot stop a processor."""
        reason = f"{type(exc).__name__}: {exc}"
        first = items[0].record if items else {}
        log.warning("%d inputs dead-lettered: %s", len(items), reason,
                    extra={"sim": first.get("sim_id"), "agent": first.get("agent_id"), "topic": items[0].topic,
                           "partition": items[0].partition, "offset": items[0].offset} if items else None)
        for inc in items:
            raw = inc.event.value if inc.event is not None else b""
            headers = getattr(getattr(inc.event, "message", None), "headers", None)
            self.dead_letter(stage=stage, reason=reason, raw=raw or b"", topic=inc.topic, partition=inc.partition,
                             offset=inc.offset, key=inc.key, sim_id=inc.record.get("sim_id"),
                             error_type=type(exc).__name__, headers=headers)

    def emit(self, stage: str, spec: TopicSpec, key: bytes, record: dict) -> None:
        name = self.topic(spec)
        self.producer.send(name, key, self.serde.encode(spec.value, record, topic=name))
        counter = self._out_counters.get((stage, name))
        if counter is None:  # labels() per record cost more than the count itself
            counter = self._out_counters[(stage, name)] = EVENTS_OUT.labels(stage, name)
        counter.inc()

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


def register_batches(app, rt: Runtime, *, stage: str, inputs: tuple[TopicSpec, ...], expected: tuple[str, ...],
                     handle: Handler, batch_size: int = 1000, within: float | None = None, strict_order: bool = False,
                     in_flight: int = 1):
    """The Faust agent of a stage: batches of its inputs through
    :meth:`Runtime.process`. Every processor and the Cassandra sink run this.
    ``strict_order``: each partition of the inputs that are not compacted
    reaches ``handle`` in offset order, with no gap
    (:mod:`streams.partition_order`; a compacted topic has gaps of its own). ``in_flight`` > 1: up to that many batches are
    processed at once (:mod:`streams.overlap`; ``handle`` must await
    :func:`streams.overlap.turn` before it reads a key's state). ``within``:
    how long a batch waits to fill, by default ``settings.stage_batch_wait_ms``."""
    if within is None:
        within = rt.settings.stage_batch_wait_ms / 1000
    order = PartitionOrder() if strict_order else None
    ordered = frozenset(rt.topic(t) for t in inputs if t.cleanup != "compact")  # gapless
    app.gapless_topics = getattr(app, "gapless_topics", frozenset()) | ordered
    lanes = overlap.Overlap(in_flight) if in_flight > 1 else None

    @app.agent(app.topic(*(rt.topic(t) for t in inputs)), name=stage)
    async def batches(stream):
        running: list[asyncio.Task] = []
        actor, failed = asyncio.current_task(), []

        def crash_now(task: asyncio.Task) -> None:
            # A batch that fails crashes the agent at once, as it would have
            # inline, not when the next batch arrives (an idle stream may
            # never bring one): the actor is cancelled and re-raises it.
            if not task.cancelled() and task.exception() is not None and not failed:
                failed.append(task.exception())
                actor.cancel()

        try:
            async for events in stream.take_events(batch_size, within=within):
                seeks = []
                if order is not None:
                    held = len(events)
                    events, seeks = in_order(app, order, events, ordered)
                    held -= len(events)
                if events and lanes is None:
                    await rt.process(stage, events, expected, handle)
                elif events:
                    await _reap(running, room_for=lanes.depth - 1)
                    for ev in events:  # Faust's ack as the loop moves on is then not the last
                        ev.message.incref()
                    batch = lanes.admit(ev.key for ev in events)
                    running.append(asyncio.create_task(_overlapped(rt, batch, stage, events, expected, handle)))
                    running[-1].add_done_callback(crash_now)
                for tp, offset in seeks:
                    log.warning("%s: %s[%d] went on past offset %d, which never arrived: %d held back, "
                                "seeking back to %d", stage, tp.topic, tp.partition, offset, held, offset)
                    PARTITION_RESEEKS.labels(tp.topic).inc()
                    try:
                        await asyncio.wait_for(app.consumer.seek(tp, offset), stall_guard.ORDER_SEEK_TIMEOUT_S)
                    except asyncio.TimeoutError:
                        # Held messages wait on this seek: a stage stuck here
                        # would stop the worker in silence. Say why, and restart.
                        log.error("%s: %s", stage, snapshot(app, rt.busy, stall_guard.ORDER_SEEK_TIMEOUT_S,
                                                           " (a strict-order seek did not finish)"))
                        raise RuntimeError(f"{stage}: seeking {tp.topic}[{tp.partition}] back to {offset} did not "
                                           f"finish in {stall_guard.ORDER_SEEK_TIMEOUT_S:.0f}s") from None
                await _reap(running)
            await _reap(running, room_for=0)
        except asyncio.CancelledError:
            if failed:
                raise failed[0] from None
            raise
        finally:
            for task in running:  # stopping: unacked inputs are read again by whoever resumes
                task.cancel()

    return batches


async def _overlapped(rt: Runtime, batch: overlap.Batch, stage: str, events: list, expected: tuple[str, ...],
                      handle: Handler) -> None:
    overlap.enter(batch)
    try:
        await rt.process(stage, events, expected, handle)
    except BaseException as exc:
        batch.finish(exc)
        raise
    batch.finish()
    for ev in events:
        ev.ack()


async def _reap(running: list, room_for: int | None = None) -> None:
    """Drop finished batches; with ``room_for``, first wait for the oldest
    until at most that many are left running. (A failed batch crashes the
    agent through its done callback, whichever way it is reaped.)"""
    if room_for is not None:
        while len(running) > room_for:
            await asyncio.wait([running[0]])
            running.pop(0)
    running[:] = [t for t in running if not t.done()]
