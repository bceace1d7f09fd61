"""A one-agent Faust worker that loses one message the way Faust itself
does after a restart under load: the stream is handed the message while the
worker is still resuming, skips it, and never acks it. Or, with ``--gap``,
loses the messages after it before any stream sees them, as Faust's fetch
loop does when flow control is off while it hands them over: the next one
handed over is then past a gap. For test_commit_guard; run as
``python -m tests.integration.faust_drop_app``.

Every message the agent processes is appended to ``--out`` as
``partition offset`` (a line each).
"""

from __future__ import annotations

import argparse

import faust

from streams import stall_guard
from streams.app import App, create_app
from streams.partition_order import PartitionOrder, in_order
from streams.settings import get_settings


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--topic", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--drop-offset", type=int, required=True, help="the offset of partition 0 lost once")
    p.add_argument("--out", required=True)
    p.add_argument("--faust-commit-rule", action="store_true", help="plain faust.App: Faust's own commit rule")
    p.add_argument("--drop-always", action="store_true", help="lose it on every delivery, not just the first")
    p.add_argument("--orphan", action="store_true",
                   help="lose it the other way: taken by the stream, never processed nor acked (Faust still "
                        "counts it as in the worker); the guard is told when a message is being processed")
    p.add_argument("--strict-order", action="store_true",
                   help="batches through streams.partition_order, as the agent stage takes them")
    p.add_argument("--gap", type=int, default=0,
                   help="instead: the N offsets of partition 0 after --drop-offset never reach a stream the first "
                        "time they are fetched (Faust's fetch loop records a gap)")
    p.add_argument("--stall-after", type=float, default=3.0)
    a = p.parse_args()

    settings = get_settings()
    app = create_app(settings, a.group, app_class=faust.App if a.faust_commit_rule else App)
    processing = [0]
    stall_guard.register(app, interval_s=0.5, stall_after_s=a.stall_after,
                         busy=(lambda: processing[0] > 0) if a.orphan else None)
    dropped: list[int] = []
    held: list = []
    if a.gap:
        gap_before_streams(app, a.topic, range(a.drop_offset + 1, a.drop_offset + 1 + a.gap))
        a.drop_offset = -1  # the streams lose nothing themselves

    async def consume_acking_by_hand(stream):
        async for event in stream.noack().events():
            message = event.message
            if message.partition == 0 and message.offset == a.drop_offset and not dropped:
                dropped.append(message.offset)
                # Faust counts it as taken (its unacked set is weak: something
                # must hold the message, as a stuck buffer would); nobody acks it.
                held.append(message)
                app.consumer._unacked_messages.add(message)
                continue
            processing[0] += 1
            try:
                with open(a.out, "a") as f:
                    f.write(f"{message.partition} {message.offset}\n")
            finally:
                processing[0] -= 1
            await stream.ack(event)

    order = PartitionOrder()

    async def consume_in_order(stream):
        async for events in stream.take_events(100, within=0.2):
            kept = []
            for event in events:
                message = event.message
                if message.partition == 0 and message.offset == a.drop_offset and not dropped:
                    dropped.append(message.offset)  # the stream never hands it over
                    message.acked = True
                    continue
                kept.append(event)
            kept, seeks = in_order(app, order, kept, frozenset({a.topic}))
            with open(a.out, "a") as f:
                for event in kept:
                    f.write(f"{event.message.partition} {event.message.offset}\n")
            for tp, offset in seeks:
                print(f"seeking back to {offset}", flush=True)
                await app.consumer.seek(tp, offset)

    topic = app.topic(a.topic, key_serializer="raw", value_serializer="raw")
    if a.strict_order:
        app.agent(topic, name="consume")(consume_in_order)
    elif a.orphan:
        app.agent(topic, name="consume")(consume_acking_by_hand)

    async def consume(stream):
        async for event in stream.events():
            message = event.message
            if message.partition == 0 and message.offset == a.drop_offset and (a.drop_always or not dropped):
                dropped.append(message.offset)
                message.acked = True  # gone from Faust's books: never acked, never in flight
                continue
            with open(a.out, "a") as f:
                f.write(f"{message.partition} {message.offset}\n")

    if not (a.orphan or a.strict_order):
        app.agent(topic, name="consume")(consume)

    from faust.worker import Worker

    Worker(app, loglevel="info", quiet=True, redirect_stdouts=False).execute_from_commandline()


def gap_before_streams(app, topic: str, offsets: range) -> None:
    """The fetch loop passes ``offsets`` of partition 0 the first time
    they are fetched: no stream sees them, and the next message it hands
    over is past a gap. The topic is declared gapless (streams/app.py), as
    every stage declares its inputs that are not compacted."""
    app.gapless_topics = frozenset({topic})
    consumer = app.consumer
    fetched = consumer.getmany
    passed: set[int] = set()

    async def getmany(timeout: float):
        async for tp, message in fetched(timeout):
            if tp.partition == 0 and message.offset in offsets and message.offset not in passed:
                passed.add(message.offset)
                continue
            yield tp, message

    consumer.getmany = getmany


if __name__ == "__main__":
    main()
