"""What a restarting worker's model already answered.

A worker that dies between producing a batch's outputs and committing its
inputs (SIGKILL, an OOM, a lost commit) leaves those inputs to be processed
again, by itself once restarted or by whichever worker takes its partitions
over. Their LLM requests were answered and journalled on the LlmCall topic
(``streams/llm/journal.py``) and their embeddings travel on ScoredMemory.
At start, the worker finds the oldest input its group has not committed and
reads both topics from that time on (:func:`load`); ``ResumedLlm`` then
answers the same requests from them.

Reading starts from the input's Kafka timestamp less ``MARGIN_MS`` (clocks
of the publisher's and the workers' hosts differ), and stops at the end
offsets seen at start or after ``settings.llm.resume_journal_max`` records.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import OFFSET_END, TopicPartition

from streams.errors import DecodeError
from streams.kafka import committed_offsets, make_consumer, watermarks
from streams.llm.journal import Journal
from streams.serde import default_serde
from streams.settings import Settings
from streams.topics import LLM_CALLS, SCORED, topic_name
from streams.vectors import vector_of

MARGIN_MS = 60_000


@dataclass
class Resumed:
    journal: Journal | None
    since_ms: int | None  # Kafka timestamp of the oldest uncommitted input (None: nothing to resume)
    records: int = 0
    capped: bool = False

    def line(self) -> str:
        if self.since_ms is None:
            return "resume journal: every input committed, nothing to answer again"
        return (f"resume journal: {self.journal.summary()['answers']} answers and {len(self.journal.vectors)} embeddings "
                f"from {self.records} records since {time.strftime('%H:%M:%S', time.gmtime(self.since_ms / 1000))} UTC"
                + (" (stopped at MURMUR_LLM__RESUME_JOURNAL_MAX)" if self.capped else ""))


def oldest_uncommitted(settings: Settings, group: str, topics: list[str], timeout: float = 10.0) -> int | None:
    """The Kafka timestamp (ms) of the oldest input ``group`` has read past
    nothing of yet, over every partition of ``topics``; None when every
    partition is committed to its end. A partition the group never committed
    is left out: the group has not processed it, so nothing was asked for it."""
    consumer = make_consumer(settings, group=group, **{"enable.partition.eof": False})
    try:
        md = consumer.list_topics(timeout=10)
        parts = [TopicPartition(t, p) for t in topics if t in md.topics for p in sorted(md.topics[t].partitions)]
        pending = []
        for tp in committed_offsets(consumer, parts) if parts else []:
            if tp.offset >= 0 and tp.offset < watermarks(consumer, tp)[1]:
                pending.append(TopicPartition(tp.topic, tp.partition, tp.offset))
        if not pending:
            return None
        consumer.assign(pending)
        first: dict[tuple[str, int], int] = {}
        deadline = time.monotonic() + timeout
        while len(first) < len(pending) and time.monotonic() < deadline:
            for m in consumer.consume(len(pending), 0.5):
                if not m.error():
                    first.setdefault((m.topic(), m.partition()), m.timestamp()[1])
        return min(first.values()) if first else None
    finally:
        consumer.close()


def load(settings: Settings, group: str, input_topics: list[str]) -> Resumed:
    since = oldest_uncommitted(settings, group, input_topics)
    if since is None:
        return Resumed(None, None)
    journal, serde, budget = Journal(), default_serde(), settings.llm.resume_journal_max
    read = 0
    for spec in (LLM_CALLS, SCORED):
        for m in _records_since(settings, topic_name(spec, settings.namespace), since - MARGIN_MS, budget - read):
            read += 1
            try:
                _, record = serde.decode(m.value(), spec.value)
            except DecodeError:
                continue
            if spec is LLM_CALLS:
                journal.add_call(record)
            else:
                journal.add_vector(record["content"], vector_of(record))
    return Resumed(journal, since, read, capped=read >= budget)


def _records_since(settings: Settings, topic: str, since_ms: int, limit: int) -> list:
    """Records of ``topic`` written from ``since_ms`` to its end offsets at
    the call, at most ``limit``."""
    if limit <= 0:
        return []
    consumer = make_consumer(settings, **{"enable.partition.eof": False})
    try:
        md = consumer.list_topics(topic, timeout=10)
        if topic not in md.topics or md.topics[topic].error is not None:
            return []
        asked = [TopicPartition(topic, p, since_ms) for p in sorted(md.topics[topic].partitions)]
        starts = [tp for tp in consumer.offsets_for_times(asked, timeout=10) if tp.offset not in (OFFSET_END, -1)]
        ends = {tp.partition: watermarks(consumer, tp)[1] for tp in starts}
        starts = [tp for tp in starts if tp.offset < ends[tp.partition]]
        if not starts:
            return []
        consumer.assign(starts)
        out: list = []
        open_parts = {tp.partition for tp in starts}
        deadline = time.monotonic() + 60  # a broker that goes away meanwhile: start with what was read
        while open_parts and len(out) < limit and time.monotonic() < deadline:
            for m in consumer.consume(1000, 1.0):
                if m.error() or m.partition() not in open_parts:
                    continue
                if m.offset() < ends[m.partition()]:
                    out.append(m)
                if m.offset() + 1 >= ends[m.partition()]:
                    open_parts.discard(m.partition())
        return out[:limit]
    finally:
        consumer.close()
