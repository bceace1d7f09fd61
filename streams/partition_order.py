"""Strict offset order on an input partition, whatever Faust hands over.

Faust can skip a message under load (a stream handed it while the worker
resumes its streams, a queue cleared by a rebalance) and go on with the ones
after it; the stall guard then reads the skipped one again, but after them.
For the agent stage that order is the result: one agent's events must be
read in log order (ADR 0005), and a live run equal to its replay depends on
it (CI caught a live run that differed from the replay after such a skip).

So a stage that asks for it sees each partition's offsets in order: a
message past a gap is held back (dropped from Faust's books, never acked or
processed) and the partition is sought back to the first missing offset,
from where it is read again in order. Re-read messages before that offset
go through as usual (redeliveries, absorbed downstream). Only for topics
without gaps of their own: not compacted, not transactional (Murmur writes
none transactionally); a stage's compacted inputs pass as Faust hands them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PartitionOrder:
    """The decision, kept apart from Faust so it can be tested alone."""

    next: dict = field(default_factory=dict)  # tp -> the next offset to process
    seeking: dict = field(default_factory=dict)  # tp -> the offset a seek was asked to
    generation: int | None = None

    def reset_if(self, generation: int) -> None:
        """A rebalance: offsets start again from the committed ones."""
        if generation != self.generation:
            self.next.clear()
            self.seeking.clear()
            self.generation = generation

    def admit(self, tp, offset: int, committed: int | None) -> tuple[str, int | None]:
        """``("process", None)``; ``("hold", None)``: a gap before it, a seek
        already asked; ``("seek", offset)``: a gap before it, seek ``tp`` to
        that offset (the first one missing)."""
        expected = self.next.get(tp, committed)
        if expected is None or offset <= expected:
            if expected is None or offset == expected:
                self.next[tp] = offset + 1
                self.seeking.pop(tp, None)
            return "process", None  # in order, or a redelivery of one already processed
        if self.seeking.get(tp) == expected:
            return "hold", None
        self.seeking[tp] = expected
        return "seek", expected


def in_order(app, order: PartitionOrder, events: list, topics: frozenset) -> tuple[list, list[tuple[object, int]]]:
    """The events to process, and the seeks to make ``(tp, offset)``; only
    partitions of ``topics`` are held to their order. Held events are dropped
    from Faust's books: marked acked so that the batch loop's ack does not
    count them, and out of its unacked set."""
    consumer = app.consumer
    order.reset_if(app.consumer_generation_id)
    keep, seeks = [], []
    for event in events:
        message = event.message
        tp = message.tp
        if tp.topic not in topics:
            keep.append(event)
            continue
        verdict, seek_to = order.admit(tp, message.offset, consumer._committed_offset.get(tp))
        if verdict == "process":
            keep.append(event)
            continue
        if verdict == "seek":
            seeks.append((tp, seek_to))
        message.acked = True
        consumer._unacked_messages.discard(message)
    return keep, seeks
