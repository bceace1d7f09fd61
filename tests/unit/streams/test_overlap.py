"""Overlapped batches keep each key's order and the batches' output order."""

import asyncio

import pytest

from streams import overlap


def run(coro):
    return asyncio.run(coro)


def test_a_key_waits_for_the_earlier_batch_holding_it_and_others_do_not():
    async def go():
        lanes = overlap.Overlap(2)
        log = []
        first = lanes.admit([b"a", b"b"])
        second = lanes.admit([b"b", b"c"])

        async def earlier():
            overlap.enter(first)
            await asyncio.sleep(0.05)
            log.append("first done")
            first.finish()

        async def later(key):
            overlap.enter(second)
            await overlap.turn({key})
            log.append(f"second {key!r}")

        await asyncio.gather(earlier(), later(b"c"), later(b"b"))
        return log

    assert run(go()) == ["second b'c'", "first done", "second b'b'"]


def test_in_order_waits_for_every_earlier_batch():
    async def go():
        lanes = overlap.Overlap(3)
        batches = [lanes.admit([k]) for k in (b"x", b"y", b"z")]
        log = []

        async def through(i, delay):
            overlap.enter(batches[i])
            await asyncio.sleep(delay)
            await overlap.in_order()
            log.append(i)
            batches[i].finish()

        await asyncio.gather(through(0, 0.06), through(1, 0.0), through(2, 0.03))
        return log

    assert run(go()) == [0, 1, 2]


def test_a_failed_batch_fails_those_waiting_on_it():
    async def go():
        lanes = overlap.Overlap(2)
        first, second = lanes.admit([b"a"]), lanes.admit([b"a"])
        first.finish(RuntimeError("flush failed"))
        overlap.enter(second)
        await overlap.turn([b"a"])

    with pytest.raises(overlap.EarlierBatchFailed, match="flush failed"):
        run(go())


def test_outside_a_batch_nothing_waits_and_finished_batches_are_forgotten():
    async def go():
        await overlap.turn([b"a"])
        await overlap.in_order()
        lanes = overlap.Overlap(2)
        first = lanes.admit([b"a"])
        first.finish()
        return lanes.admit([b"a"]).before

    assert run(go()) == ()
    with pytest.raises(ValueError):
        overlap.Overlap(0)
