"""A seek fence: what Faust's fetch loop read before a seek stays behind it.

Faust (0.15.3) keeps a read offset per partition and drops a fetched message
whose offset is below it ("already read"). A seek sets the read offset to
its target so that the messages from there are read again. Two things in
Faust's fetch loop (``Consumer._drain_messages``) undo that:

* the loop hands one message at a time to the streams and, once the hand-off
  returns, sets the read offset to that message's offset. A seek made while a
  hand-off waits (a full stream buffer, flow control) is overwritten by the
  older message's offset, and every message the seek reads again is dropped;
* records fetched before the seek are still handed over after it, and move
  the read offset past the seek's target the same way.

Either way the message the seek was for never reaches a stream: the stall
guard's seek back to a lost message did nothing, and a worker sat at its
committed offset until the test waiting on it timed out (CI, twice).

The fence counts the seeks of each partition, counted in the same step as
the consumer's own seek, and each fetch takes the counts in the same step as
it takes its records from the consumer (both on the consumer's thread), so
a record is from before a seek exactly when its partition's count moved
since its fetch. Such a record is dropped (the seek reads it again), and a
read offset written for a message whose partition was sought during its
hand-off is put back to the seek's target. The decisions are here, apart
from Faust; :mod:`streams.faust_consumer` wires them in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

KEEP = object()  # ``restore``: leave the read offset as it is


@dataclass
class SeekFence:
    seeks: dict = field(default_factory=dict)  # tp -> seeks made so far
    targets: dict = field(default_factory=dict)  # tp -> the read offset the last seek set

    def seeking(self, targets: Mapping[object, Optional[int]]) -> None:
        """Called in the step that seeks each ``tp`` of ``targets``, with the
        read offset Faust sets for it (``None``: none, read what comes)."""
        for tp, target in targets.items():
            self.seeks[tp] = self.seeks.get(tp, 0) + 1
            self.targets[tp] = target

    def snapshot(self) -> dict:
        """Taken in the step a fetch takes its records."""
        return dict(self.seeks)

    def stale(self, stamps: Mapping, tp) -> bool:
        """A record of ``tp`` from the fetch that took ``stamps`` was read
        before a seek of ``tp``."""
        return self.seeks.get(tp, 0) != stamps.get(tp, 0)

    def restore(self, stamps: Mapping, tp):
        """After the hand-off of a message of ``tp`` from the fetch that took
        ``stamps``: the read offset to put back (the last seek's target), or
        ``KEEP``."""
        return self.targets.get(tp) if self.stale(stamps, tp) else KEEP
