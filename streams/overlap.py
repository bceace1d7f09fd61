"""Overlapping batches of one stage without reordering any key's events.

A stage that waits on an LLM spends each batch in a chain of round trips
(embed, then the memory calls) while its CPU idles, and Faust's
``take_events`` reads nothing until the batch is over. With overlap, the
stage's batch loop hands a batch to a task and takes the next one at once,
up to ``depth`` batches in flight (``register_batches(in_flight=...)``).

What keeps this equal to one batch after another:
  * a key's events are processed in batch order: a batch's handler awaits
    :func:`turn` for the keys it is about to read state for, which waits for
    the earlier batches in flight holding any of them (their outputs on
    Kafka, their state written). Keys are the Kafka keys of the inputs, the
    same keys that put an agent's events on one partition in order;
  * outputs and state leave in batch order: :meth:`streams.runtime.Runtime.process`
    awaits :func:`in_order` before producing anything;
  * an input is acknowledged only once its batch is through: the loop takes
    a reference on each message (Faust's ``Message.incref``, the mechanism it
    uses for a message read by several streams), so Faust's own ack when the
    loop moves on is not the last one; the batch's own ack once it is
    through (``streams.runtime._overlapped``) is. Faust
    commits only up to the first unacknowledged offset of a partition, and a
    rebalance waits for unacknowledged messages (``Consumer.wait_empty``).
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Iterable

_current: ContextVar["Batch | None"] = ContextVar("murmur_overlap_batch", default=None)


@dataclass(eq=False)
class Batch:
    keys: frozenset
    before: tuple["Batch", ...]  # the batches in flight when this one was taken
    done: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def finish(self, error: BaseException | None = None) -> None:
        """Through (``error``: it failed, and the batches after it that share
        its keys or wait to produce fail too: they would build on state it
        never wrote)."""
        if self.done.done():
            return
        if error is None:
            self.done.set_result(None)
            return
        self.done.set_exception(EarlierBatchFailed(f"an earlier batch failed: {type(error).__name__}: {error}"))
        self.done.exception()  # retrieved: the failure itself is raised where it happened


class EarlierBatchFailed(RuntimeError):
    pass


class Overlap:
    """The batches of one stage in flight, oldest first."""

    def __init__(self, depth: int) -> None:
        if depth < 1:
            raise ValueError(f"overlap depth must be at least 1, got {depth}")
        self.depth = depth
        self._open: list[Batch] = []

    def admit(self, keys: Iterable) -> Batch:
        self._open = [b for b in self._open if not b.done.done()]
        batch = Batch(frozenset(keys), tuple(self._open))
        self._open.append(batch)
        return batch


def enter(batch: Batch) -> None:
    """Make ``batch`` the one :func:`turn` and :func:`in_order` wait for in
    this task (call it first thing in the batch's own task)."""
    _current.set(batch)


async def turn(keys: Iterable) -> None:
    """Until no earlier batch in flight holds any of ``keys`` (no-op outside
    an overlapped batch)."""
    batch = _current.get()
    if batch is None:
        return
    keys = keys if isinstance(keys, (set, frozenset)) else set(keys)
    for prior in batch.before:
        if not prior.keys.isdisjoint(keys):
            await _through(prior)


async def in_order() -> None:
    """Until every earlier batch in flight is through."""
    batch = _current.get()
    if batch is None:
        return
    for prior in batch.before:
        await _through(prior)


async def _through(prior: Batch) -> None:
    if prior.done.done():
        prior.done.result()  # raises EarlierBatchFailed for a failed one
    else:
        await asyncio.shield(prior.done)  # shielded: a waiter cancelled must not cancel it for all
