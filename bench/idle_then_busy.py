"""Idle, then busy: a worker left without traffic for longer than Faust's
stall timeout, then fed again. Counts Faust's stall warnings in its log
("Has not committed TP", "Stream stopped processing") and checks that every
event landed. Issue 18 item 4: the warnings seen after a demo worker idled
for minutes (streams/faust_consumer.py ConsumerThread explains them).

    python -m bench.idle_then_busy                 # Faust's default 300 s timeout, 360 s idle (~7 min)
    python -m bench.idle_then_busy --timeout 5 --idle 12

Writes bench/results/idle-then-busy.json.
"""

from __future__ import annotations

import argparse
import json
import re
import time
import uuid

from bench.common import ROOT, Ctx, post_events, publish, start_workers, stop_workers, wait_drained, wait_members
from deploy.pipeline import process_log
from sinks.cassandra_store import CassandraStore
from streams.settings import Settings

WARNINGS = re.compile(r"Has not committed|has not committed|Stream stopped processing|stream stopped processing|"
                      r"Stream has not started processing")


def run(timeout_s: float, idle_s: float, events: int = 400) -> dict:
    settings = Settings()
    ctx = Ctx(settings=settings, quick=True, repeats=1)
    w = start_workers(ctx, "all", prefix="idle", env={"MURMUR_FAUST_STALL_WARNING_S": str(timeout_s)})
    try:
        wait_members(w.settings, w.group_id, 1)
        sim = f"idle-{uuid.uuid4().hex[:6]}"
        publish(w.settings, post_events(sim, events, agents=40))
        wait_drained(ctx, w, timeout=180)
        time.sleep(idle_s)
        resumed = time.monotonic()
        publish(w.settings, post_events(sim, events, agents=40, first=events))
        drained_after = wait_drained(ctx, w, timeout=180)
        time.sleep(max(10.0, 3 * timeout_s / 2) if timeout_s < 60 else 30.0)  # later checks too
        log = process_log(settings, w.names[0], 1_000_000)
        hits = [line for line in log.splitlines() if WARNINGS.search(line)]
        store = CassandraStore(w.settings)
        try:
            landed = store.count_memories(sim, kinds=("post",))
        finally:
            store.close()
        return {"stall_timeout_s": timeout_s, "idle_s": idle_s, "events": 2 * events, "landed": landed,
                "lost": 2 * events - landed, "warnings": len(hits), "examples": [h[:300] for h in hits[:3]],
                "resume_to_drained_s": round(drained_after, 1), "since_resume_s": round(time.monotonic() - resumed, 1)}
    finally:
        stop_workers(ctx, w)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--timeout", type=float, default=300.0, help="Faust's stall timeout (its default: 300 s)")
    ap.add_argument("--idle", type=float, default=360.0, help="seconds without traffic")
    a = ap.parse_args()
    out = run(a.timeout, a.idle)
    print(json.dumps(out, indent=1))
    path = ROOT / "bench" / "results" / "idle-then-busy.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
