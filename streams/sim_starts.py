"""Where a simulation's events begin in the log (``SIM_STARTS``, the start topic).

Reading one simulation back (a replay, an eval, its LLM-call journal) meant
reading every source topic from its beginning: the cost grew with everything
ever published, not with the simulation. Now each publisher session writes
one SimStart, acknowledged before the first event of a simulation it sends:
a time read from its clock before any of those events was produced, so each
of them has a Kafka timestamp (CreateTime, the same clock) at or after it.
Kafka's time index then gives, per partition, the first offset whose
timestamp is at or after the simulation's earliest start less a margin
(another machine's clock, a clock stepped back): none of its events is
before that offset, whatever the order of timestamps in the partition.

Why not the Simulation event's own timestamp: its topic is compacted and a
resumed publish re-sends it, so only the latest is left. Why one record per
session: a resumed publish adds its own and the earliest stays.

A simulation with no start record (events produced by a client other than
Murmur's publisher) is read from the beginning, as before, and says so.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Iterable

from streams.errors import DecodeError
from streams.kafka import offsets_at_time, read_to_end
from streams.serde import AvroSerde, default_serde
from streams.settings import Settings
from streams.topics import SIM_STARTS, may_be_of_sim, topic_name


def start_key(sim_id: str, session: str) -> bytes:
    return f"{sim_id}/{session}".encode()


def start_record(sim_id: str, session: str, ts_ms: int | None = None) -> dict:
    return {"sim_id": sim_id, "session": session, "host": socket.gethostname(),
            "ts": int(time.time() * 1000) if ts_ms is None else ts_ms}


def earliest(records: Iterable[dict], sim_id: str) -> int | None:
    """The earliest start of ``sim_id`` among SimStart records, or None."""
    times = [r["ts"] for r in records if r.get("sim_id") == sim_id]
    return min(times) if times else None


@dataclass(frozen=True)
class ReadFrom:
    """Where to start reading each partition (None: from the beginning), and why."""

    offsets: dict[tuple[str, int], int] | None
    why: str


def recorded_start(settings: Settings, sim_id: str, serde: AvroSerde | None = None) -> int | None:
    """The simulation's earliest recorded start (ms), reading the start topic
    (one partition, one record per publish session)."""
    serde = serde or default_serde()
    records = []
    for m in read_to_end(settings, topic_name(SIM_STARTS)):
        if m.value() is None or not may_be_of_sim(m.key(), sim_id):
            continue  # a tombstone (a deleted simulation), or another simulation's
        try:
            records.append(serde.decode(m.value())[1])
        except DecodeError:
            continue  # not a start: nothing can be concluded from it, the others stand
    return earliest(records, sim_id)


def reading_since(settings: Settings, sim_id: str, serde: AvroSerde | None = None) -> tuple[int | None, int | None]:
    """(the simulation's first recorded start, the time to read its records
    from: that less the margin); (None, None) when no start is recorded."""
    start = recorded_start(settings, sim_id, serde)
    return (None, None) if start is None else (start, start - int(settings.replay_start_margin_s * 1000))


def read_from(settings: Settings, sim_id: str, topics: list[str],
              ends: dict[tuple[str, int], int] | None = None) -> ReadFrom:
    """Where a reader of ``sim_id``'s events in ``topics`` (ending at
    ``ends``, when the caller has them) may start."""
    start, since = reading_since(settings, sim_id)
    if start is None:
        return ReadFrom(None, f"the beginning: {topic_name(SIM_STARTS)} has no start of {sim_id!r} "
                              "(its events were not sent by Murmur's publisher, or before it recorded starts)")
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start / 1000))
    return ReadFrom(offsets_at_time(settings, topics, since, ends),
                    f"the simulation's first start ({at}) less {settings.replay_start_margin_s:g} s")
