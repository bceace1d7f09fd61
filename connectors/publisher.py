"""Publish parsed events to Kafka; bad lines to the dead-letter topic.

Nothing is dropped silently: every input line is published, dead-lettered
(with its raw bytes and the reason) or counted as skipped, with why.
"""

from __future__ import annotations

import sys
import uuid
from typing import Callable, Iterable

from connectors.events import BadLine, Counts, Item, OutEvent, Skipped
from streams.contract import check_ranges
from streams.errors import ContractError, EncodeError
from streams.dead_letter import dead_letter_record
from streams.kafka import BatchProducer, create_topics, make_producer
from streams.serde import AvroSerde, default_serde
from streams.settings import Settings
from streams.sim_starts import start_key, start_record
from streams.topics import DEAD_LETTER, ROUTES, SIM_STARTS, topic_name


class Publisher:
    """Validates items at the edge and sends them; ``dry_run`` validates and
    counts without a broker (``murmur publish --dry-run``)."""

    def __init__(self, settings: Settings | None, *, serde: AvroSerde | None = None,
                 on_error: Callable[[str], None] | None = None, dry_run: bool = False) -> None:
        self.settings = settings
        self.serde = serde or default_serde()
        self.dry_run = dry_run
        self.producer = None if dry_run else BatchProducer(make_producer(settings))
        self.counts = Counts()
        self._on_error = on_error or (lambda msg: print(msg, file=sys.stderr))
        # Kafka would refuse a bigger record and abort the whole publish: it is
        # dead-lettered here instead, like any bad line (settings.max_record_bytes).
        self.max_record_bytes = (settings or Settings()).max_record_bytes
        # One start record per simulation this session sends (streams/sim_starts.py).
        self.session = uuid.uuid4().hex
        self._started: set[str] = set()

    def publish(self, items: Iterable[Item], *, progress: Callable[[int], None] | None = None,
                flush: bool = True) -> Counts:
        for item in items:
            if not (isinstance(item, OutEvent) and item.derived):
                self.counts.read += 1
            if isinstance(item, Skipped):
                self.counts.skip(item.reason)
            elif isinstance(item, BadLine):
                self._dead(item)
            else:
                try:
                    # Validate at the edge: the contract is enforced where
                    # data enters, so processors only meet valid events.
                    check_ranges(item.type_name, item.record)
                    routes = ROUTES.get(item.type_name, (item.spec,))
                    value = self.serde.encode(item.type_name, item.record, topic=topic_name(routes[0]), check=True)
                except (ContractError, EncodeError) as exc:
                    self._dead(BadLine(item.source_ref, str(exc), repr(item.record).encode(), field=exc.field,
                                       sim_id=item.record.get("sim_id")))
                    value = None
                if value is not None and len(value) > self.max_record_bytes:
                    self._dead(BadLine(item.source_ref, f"record over the size limit: {len(value):,} bytes, the "
                                       f"limit is {self.max_record_bytes:,} (MURMUR_MAX_RECORD_BYTES)",
                                       repr(item.record).encode(), field=None, sim_id=item.record.get("sim_id")))
                elif value is not None:
                    if self.producer is not None:
                        self._mark_start(item.record.get("sim_id"))
                        for spec in routes:
                            name = topic_name(spec)
                            self.producer.send(name, item.key, self.serde.reframe(value, item.type_name, name))
                    action = item.record.get("action") if item.type_name in ("Post", "Observation") else None
                    self.counts.add(item.type_name, action, item.derived)
                    if item.unknown_action:
                        self.counts.unknown(item.unknown_action)
            if progress is not None:
                progress(1)
        if flush:
            self.flush()
        return self.counts

    def flush(self) -> None:
        """Wait until Kafka acknowledged everything sent (raises if it did not)."""
        if self.producer is not None:
            self.producer.flush_blocking()

    def _mark_start(self, sim_id: str | None) -> None:
        """Before this session's first event of ``sim_id``: its start record,
        acknowledged (a start lost while its events landed would let a later
        session's start stand for them), its time read before any of them is
        produced."""
        if not sim_id or sim_id in self._started:
            return
        topic = topic_name(SIM_STARTS)
        if not self._started:
            # Compacted and never expiring, which an auto-created topic is not
            # (a deployment that predates it).
            create_topics(self.settings, (SIM_STARTS,))
        self.producer.send(topic, start_key(sim_id, self.session),
                           self.serde.encode("SimStart", start_record(sim_id, self.session), topic=topic))
        self.producer.flush_blocking()
        self._started.add(sim_id)

    def _dead(self, bad: BadLine) -> None:
        self._on_error(f"error: {bad.message()}")
        if self.producer is not None:
            raw, reason = bad.raw, bad.reason
            keep = self.max_record_bytes // 2  # the dead letter must fit the limit too, with its reason
            if len(raw) > keep:
                raw, reason = raw[:keep], f"{reason} [raw cut to its first {keep:,} of {len(raw):,} bytes]"
            record = dead_letter_record(stage="publisher", reason=reason, raw=raw, field=bad.field,
                                        source_ref=bad.source_ref, sim_id=bad.sim_id)
            self.producer.send(topic_name(DEAD_LETTER), b"publisher", self.serde.encode("DeadLetter", record, topic=topic_name(DEAD_LETTER)))
        self.counts.dead(bad.reason, bad.field)
