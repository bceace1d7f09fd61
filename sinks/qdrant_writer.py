"""qdrant-sink: ScoredMemory embeddings -> the Qdrant collection.

A plain confluent-kafka consumer loop rather than a Faust agent, because in
Qdrant's local (in-process) mode only one process may open the collection:
the API process that serves retrieval must also be the one that writes it,
so the API runs this loop in a thread (see docs/adr/0001). With a Qdrant
server (``MURMUR_QDRANT_URL``) the same loop runs as its own process:
``murmur sink qdrant``.

At-least-once: offsets are committed only after the upsert returned; point
ids come from memory ids, so a redelivery rewrites the same points. A
record the store refuses while it answers otherwise (a vector of the wrong
dimension) is dead-lettered after MURMUR_SINK_REFUSAL_TRIES tries and the
batch goes on; while the store does not answer, the batch waits.
"""

from __future__ import annotations

import logging
import threading
import time

from confluent_kafka import KafkaError

from streams.app import group_id
from streams.dead_letter import dead_letter_record, reason_label
from streams.errors import DecodeError
from streams.kafka import BatchProducer, make_consumer, make_producer
from streams.metrics import DEAD_LETTERS, EVENTS_IN, SINK_REFUSED, SINK_RETRIES, SINK_WRITE_SECONDS
from streams.serde import AvroSerde, default_serde
from streams.settings import Settings
from streams.topics import DEAD_LETTER, SCORED, topic_name
from sinks.refusals import give_up
from sinks.vector_stores import VectorStore

log = logging.getLogger(__name__)
STAGE = "qdrant-sink"


class QdrantSink:
    def __init__(self, settings: Settings, store: VectorStore, *, serde: AvroSerde | None = None,
                 batch_size: int = 500) -> None:
        self.settings = settings
        self.store = store
        self.serde = serde or default_serde()
        self.batch_size = batch_size
        self.group = group_id(settings, STAGE)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.written = 0
        self.last_error: str | None = None

    def run_once(self, consumer, dead: BatchProducer, timeout: float = 0.5) -> int:
        msgs = consumer.consume(self.batch_size, timeout)
        memories = []
        for msg in msgs:
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("qdrant-sink: %s", msg.error())
                continue
            EVENTS_IN.labels(STAGE, msg.topic()).inc()
            try:
                _, record = self.serde.decode(msg.value(), "ScoredMemory")
            except DecodeError as exc:
                self._dead_letter(dead, msg, exc, field=exc.field)
                continue
            memories.append((msg, record))
        if not msgs:
            return 0
        attempt = 0
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                self.written += self.store.upsert([r for _, r in memories])
                SINK_WRITE_SECONDS.labels(STAGE).observe(time.perf_counter() - started)
                self.last_error = None
                break
            except Exception as exc:  # keep the batch: retry with backoff
                attempt += 1
                self.last_error = str(exc)
                SINK_RETRIES.labels(STAGE).inc()
                if self._view_answers() and self._one_by_one(memories, dead):
                    break  # the store is up: the batch held records it refuses, now dead-lettered
                time.sleep(min(5.0, 0.1 * 2 ** attempt))
        else:
            return 0  # stopping before the batch landed: do not commit it
        dead.flush_blocking()
        consumer.commit(asynchronous=False)
        return len(msgs)

    def _view_answers(self) -> bool:
        try:
            self.store.count()
            return True
        except Exception:  # away: the failure may be the outage's
            return False

    def _one_by_one(self, memories: list, dead: BatchProducer) -> bool:
        """Write record by record; one the store refuses MURMUR_SINK_REFUSAL_TRIES
        times while it answers otherwise is dead-lettered with its error
        (sinks/refusals.py). False: the store stopped answering, so the
        whole batch waits for it (nothing committed)."""
        for msg, record in memories:
            tries = 0
            while True:
                try:
                    self.written += self.store.upsert([record])
                    break
                except Exception as exc:
                    tries += 1
                    answers = self._view_answers()
                    if give_up(tries, self.settings.sink_refusal_tries, answers):
                        SINK_REFUSED.labels(STAGE).inc()
                        self._dead_letter(dead, msg, exc, field="embedding_f32",
                                          reason=f"refused by the vector store: {type(exc).__name__}: {exc}")
                        break
                    if not answers or self._stop.is_set():
                        return False
                    time.sleep(min(5.0, 0.1 * 2 ** tries))
        return True

    def _dead_letter(self, dead: BatchProducer, msg, exc: BaseException, field: str | None = None,
                     reason: str | None = None) -> None:
        reason = reason or str(exc)
        DEAD_LETTERS.labels(STAGE, reason_label(reason)).inc()
        dead_topic = topic_name(DEAD_LETTER)
        dead.send(dead_topic, msg.topic().encode(), self.serde.encode("DeadLetter", topic=dead_topic, record=dead_letter_record(
            stage=STAGE, reason=reason, raw=msg.value() or b"", field=field,
            source_topic=msg.topic(), source_partition=msg.partition(), source_offset=msg.offset(), key=msg.key(),
            error_type=type(exc).__name__, headers=msg.headers())))

    def run(self) -> None:
        consumer = make_consumer(self.settings, group=self.group, **{"enable.partition.eof": False})
        dead = BatchProducer(make_producer(self.settings))
        consumer.subscribe([topic_name(SCORED, self.settings.namespace)])
        try:
            while not self._stop.is_set():
                try:
                    self.run_once(consumer, dead)
                except Exception as exc:  # never let the thread die silently
                    self.last_error = str(exc)
                    log.exception("qdrant-sink loop error")
                    time.sleep(1.0)
        finally:
            consumer.close()

    def start_thread(self) -> None:
        self._thread = threading.Thread(target=self.run, name=STAGE, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
