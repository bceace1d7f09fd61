"""The Faust ceiling on this machine: an agent that does no work, built by
the same app factory and batching as Murmur's processors.

    python -m bench.faust_ceiling --mode count|produce --source T [--sink T2] --events N --result FILE --group G

``count``: ``stream.take_events(1000, within=0.25)`` and count, nothing else.
``produce``: the same, plus every event's value produced to ``--sink``
through confluent-kafka and flushed before the next ``take`` (Murmur's commit
order, streams/runtime.py) with no decoding or work in between.

The agent times itself from its first batch to the N-th event and writes
{"events", "seconds"} (events after the first batch) to --result; the
benchmark then stops the process.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from streams.app import create_app  # noqa: E402
from streams.kafka import BatchProducer, make_producer  # noqa: E402
from streams.settings import get_settings  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=("count", "produce"), required=True)
    p.add_argument("--source", required=True)
    p.add_argument("--sink")
    p.add_argument("--events", type=int, required=True)
    p.add_argument("--result", type=Path, required=True)
    p.add_argument("--group", required=True)
    a = p.parse_args()

    settings = get_settings()
    app = create_app(settings, a.group)
    producer = BatchProducer(make_producer(settings)) if a.mode == "produce" else None
    state = {"n": 0, "first": 0, "t0": 0.0}

    @app.agent(app.topic(a.source), name="ceiling")
    async def ceiling(stream):
        async for events in stream.take_events(1000, within=0.25):
            if not state["t0"]:
                state["t0"], state["first"] = time.perf_counter(), len(events)
            if producer is not None:
                for ev in events:
                    producer.send(a.sink, ev.key, ev.value)
                await producer.flush()
            state["n"] += len(events)
            if state["n"] >= a.events and not a.result.exists():
                seconds = time.perf_counter() - state["t0"]
                tmp = a.result.with_suffix(".tmp")
                tmp.write_text(json.dumps({"events": state["n"] - state["first"], "seconds": seconds}))
                tmp.rename(a.result)

    from faust.worker import Worker

    sys.argv = [sys.argv[0], "worker"]
    Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False).execute_from_commandline()


if __name__ == "__main__":
    main()
