"""B8's measurement, run with one checkout first on ``sys.path`` (see
``bench/b8_before_after.py``): publish B2's population with that checkout's
publisher to one worker of that checkout, and print one JSON line: posts,
events, worker CPU seconds from group join to drained, drained posts/s.

Uses only what both sides have: settings, topics, the topology's input
topics, the synthetic generator and the publisher.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from confluent_kafka import ConsumerGroupState

from connectors import synthetic
from connectors.publisher import Publisher
from streams.app import group_id
from streams.kafka import admin, create_topics, group_lag, start_group_at_end
from streams.settings import get_settings
from streams.topology import input_topics, resolve

CHECKOUT = Path.cwd()
CASE = CHECKOUT / "eval" / "cases" / "new_coke_1985"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def wait(pred, timeout: float, what: str, proc: subprocess.Popen, every: float = 0.5) -> None:
    t0 = time.monotonic()
    while not pred():
        if proc.poll() is not None:
            raise SystemExit(f"the worker exited ({proc.returncode}) while waiting for {what}")
        if time.monotonic() - t0 > timeout:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(every)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--agents", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=20)
    a = p.parse_args()
    ns = f"b8{uuid.uuid4().hex[:8]}"
    settings = get_settings().model_copy(update={"namespace": ns})
    create_topics(settings, namespace=ns)
    gid = group_id(settings, "bench")
    topics = input_topics(settings, resolve("all"))
    start_group_at_end(settings, gid, topics)
    sim = f"b8-{ns}"
    run = synthetic.generate(CASE, sim_id=sim, seed=7, agents=a.agents, rounds=a.rounds)
    posts = sum(1 for e in run.events if e.type_name == "Post")
    log = open(settings.state_dir / f"{ns}-worker.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker", "--processors", "all", "--group", "bench"],
                            cwd=CHECKOUT, env={**os.environ, "MURMUR_NAMESPACE": ns, "MURMUR_METRICS_PORT": "0"},
                            stdout=log, stderr=subprocess.STDOUT)
    client = admin(settings)
    try:
        def joined() -> bool:
            d = client.describe_consumer_groups([gid])[gid].result()
            return len(d.members) == 1 and d.state == ConsumerGroupState.STABLE

        wait(joined, 180, "the worker to join its group", proc, 0.3)
        time.sleep(1.0)
        cpu0 = cpu_seconds(proc.pid)
        t0 = time.time()
        Publisher(get_settings()).publish(run.events)
        streak = [0]

        def drained() -> bool:
            lag = group_lag(settings, gid, topics)
            streak[0] = streak[0] + 1 if lag and all(x.lag == 0 for x in lag) else 0
            return streak[0] >= 2

        wait(drained, max(600.0, posts / 10), "the group to drain", proc)
        wall = time.time() - t0
        cpu = cpu_seconds(proc.pid) - cpu0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    print(json.dumps({"checkout": str(CHECKOUT), "posts": posts, "events": len(run.events), "cpu_s": round(cpu, 2),
                      "wall_s": round(wall, 2), "cpu_ms_per_post": round(1000 * cpu / posts, 3),
                      "cpu_ms_per_event": round(1000 * cpu / len(run.events), 3),
                      "drained_posts_per_s": round(posts / wall, 1)}))


if __name__ == "__main__":
    main()
