"""Each simulation's question, for the processors keyed by agent.

The question travels on the simulation's own event (``SIMULATIONS``,
compacted, keyed by simulation). A processor keyed by agent (stance) is not
co-partitioned with it, so every worker process reads the whole topic in a
thread of its own, from the beginning and then as it grows, and keeps the
latest question per simulation.

A publisher sends the Simulation event before the simulation's actions, so
it is normally known before the first post is read. For a simulation seen
before its question, the first asker waits up to
``MURMUR_VERDICT__QUESTION_WAIT_S`` (without blocking the event loop); a
simulation that has none (synthetic runs, JSONL without one) then proceeds
with an empty question and is not waited for again.
"""

from __future__ import annotations

import asyncio
import threading
import time

from confluent_kafka import KafkaError, TopicPartition

from streams.errors import DecodeError
from streams.kafka import make_consumer
from streams.serde import default_serde
from streams.settings import Settings
from streams.topics import SIMULATIONS, topic_name


class Questions:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.known: dict[str, str] = {}
        self._given_up: set[str] = set()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.caught_up = float("-inf")  # when the reader last stood at the end of every partition

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._follow, name="murmur-questions", daemon=True)
                self._thread.start()

    async def of(self, sim_id: str) -> str:
        """The simulation's question ("" when it has none)."""
        if sim_id in self.known:
            return self.known[sim_id]
        if sim_id in self._given_up:
            return ""
        self.start()
        asked = time.monotonic()
        deadline = asked + self.settings.verdict.question_wait_s
        # Done waiting once the reader has read the whole topic after we
        # asked: a simulation whose event is not there by then has none.
        while sim_id not in self.known and self.caught_up < asked and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if sim_id not in self.known:
            self._given_up.add(sim_id)
        return self.known.get(sim_id, "")

    def _follow(self) -> None:
        serde = default_serde()
        topic = topic_name(SIMULATIONS)
        consumer = make_consumer(self.settings, **{"enable.partition.eof": True})
        try:
            while True:
                try:
                    md = consumer.list_topics(topic, timeout=10)
                    parts = md.topics[topic].partitions if topic in md.topics else {}
                    if parts and md.topics[topic].error is None:
                        break
                except Exception:  # the broker is away: try again
                    pass
                time.sleep(2)
            consumer.assign([TopicPartition(topic, p, 0) for p in parts])
            at_end: set[int] = set()
            while True:
                started = time.monotonic()
                # A short poll: a first asker waits for one empty poll after
                # its question (0.2 s cost every new simulation without a
                # question a third of a second before its first batch).
                msgs = consumer.consume(500, 0.05)
                for msg in msgs:
                    if msg.error():
                        if msg.error().code() == KafkaError._PARTITION_EOF:
                            at_end.add(msg.partition())
                        else:
                            time.sleep(0.5)
                        continue
                    at_end.discard(msg.partition())
                    try:
                        _, record = serde.decode(msg.value(), "Simulation")
                    except DecodeError:
                        continue  # the verdict processor dead-letters it
                    self.known[record["sim_id"]] = record["question"]
                if not msgs and len(at_end) == len(parts):
                    # Nothing new for a whole poll and every partition at its
                    # end: everything written before `started` has been read.
                    self.caught_up = started
        finally:
            consumer.close()
