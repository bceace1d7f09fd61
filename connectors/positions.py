"""How far a publisher has read each input, kept on Kafka.

A position is stored only after every event up to it was acknowledged by
Kafka, so a publisher killed at any moment resumes at or before the last
event it sent (at-least-once); the events it sends again carry the same ids,
so downstream nothing changes and the importance stage skips what it scored.

Positions live on a compacted topic (``PUBLISHER_POSITIONS``, key
``sim/source``), beside the events they describe: a publisher needs no
writable folder (inputs are often read-only mounts) and a publisher on
another machine resumes from the same place. A digest of the input's
beginning tells a replaced or truncated input from a grown one; such an input
is read again from its start (its ids are the same, so that is harmless).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

from streams.errors import DecodeError
from streams.kafka import BatchProducer, read_to_end
from streams.serde import AvroSerde
from streams.settings import Settings
from streams.topics import PUBLISHER_POSITIONS, topic_name

DIGEST_BYTES = 4096  # of the input's beginning, enough to tell two runs' logs apart


@dataclass(frozen=True)
class Position:
    sim_id: str
    source: str
    kind: str  # lines, sqlite, file
    offset: int
    digest: str
    items: int = 0
    ended: bool = False

    @property
    def key(self) -> bytes:
        return f"{self.sim_id}/{self.source}".encode()


def prefix_digest(path: Path, upto: int | None = None) -> str:
    """SHA-256 of the first ``min(upto, DIGEST_BYTES)`` bytes (all of a small file)."""
    n = DIGEST_BYTES if upto is None else min(upto, DIGEST_BYTES)
    try:
        with path.open("rb") as fh:
            return hashlib.sha256(fh.read(n)).hexdigest()[:32]
    except OSError:
        return ""


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:32]


class PositionStore:
    """Positions of one publisher run: loaded once at start, saved after each
    acknowledged batch."""

    def __init__(self, settings: Settings, producer: BatchProducer, serde: AvroSerde) -> None:
        self.settings, self.producer, self.serde = settings, producer, serde
        self._topic = topic_name(PUBLISHER_POSITIONS)
        self._saved: dict[bytes, Position] = {}

    def load(self) -> dict[bytes, Position]:
        """Latest position per key (the topic is compacted, newest wins)."""
        out: dict[bytes, Position] = {}
        for msg in read_to_end(self.settings, self._topic):
            try:
                _, r = self.serde.decode(msg.value(), "PublisherPosition")
            except DecodeError:
                continue  # a position we cannot read only means reading that input again
            pos = Position(r["sim_id"], r["source"], r["kind"], r["offset"], r["digest"], r["items"], r["ended"])
            out[pos.key] = pos
        self._saved = dict(out)
        return out

    def save(self, positions: list[Position]) -> None:
        """Send the positions that moved and wait for Kafka to acknowledge them."""
        moved = [p for p in positions if self._saved.get(p.key) != p]
        for p in moved:
            record = {"sim_id": p.sim_id, "source": p.source, "kind": p.kind, "offset": p.offset, "digest": p.digest,
                      "items": p.items, "ended": p.ended, "ts": int(time.time() * 1000)}
            self.producer.send(self._topic, p.key, self.serde.encode("PublisherPosition", record, topic=self._topic))
        if moved:
            self.producer.flush_blocking()
            self._saved.update({p.key: p for p in moved})
