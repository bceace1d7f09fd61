"""B4: latency from publish to queryable in the API, p50/p99, at 100 and
1,000 events/s offered.

A worker runs what a post needs to become queryable (the agent stage,
whose importance step writes the scored memory, and cassandra-sink);
``murmur api`` serves the namespace (with its Qdrant sink thread, as
deployed locally). A paced publisher produces posts on a 10 ms
tick and records when each was produced; a poller reads
``GET /simulations/{sim}/timeline`` every 20 ms (only the window of event
times still unseen) and records when each post first appears. Latency =
first seen - produced, so it includes up to one poll interval.

Reference, measured in the same run: the unloaded latency (single posts,
250 ms apart).
"""

from __future__ import annotations

import threading
import time
import uuid

import httpx

from bench.common import (T0_MS, BenchError, Ctx, figure, new_ns, percentile, post_events, start_workers,
                          stop_workers, wait_members, wait_until, worker_env)
from deploy.pipeline import start_process, stop_process
from streams.kafka import BatchProducer, make_producer
from streams.serde import default_serde
from streams.topics import topic_name

NAME = "B4"
TITLE = "publish -> queryable in the API, p50/p99, by offered rate"
POLL_S = 0.02
TICK_S = 0.01


class Poller(threading.Thread):
    """Marks each post seen the first time the API's timeline returns it."""

    def __init__(self, base: str, sim: str) -> None:
        super().__init__(daemon=True)
        self.base, self.sim = base, sim
        self.published: dict[int, float] = {}  # index -> produced at (time.time())
        self.seen: dict[int, float] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.polls = 0
        self.errors = 0

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=10) as http:
            while not self.stop.is_set():
                with self.lock:
                    unseen = [i for i in self.published if i not in self.seen]
                if unseen:
                    lo, hi = min(unseen), max(unseen)
                    try:
                        resp = http.get(f"/simulations/{self.sim}/timeline",
                                        params={"before": T0_MS + hi + 1, "limit": min(1000, hi - lo + 1)})
                    except httpx.HTTPError:
                        resp = None
                    now = time.time()
                    if resp is None or resp.status_code != 200:
                        self.errors += 1
                        self.stop.wait(POLL_S)
                        continue
                    rows = resp.json()
                    self.polls += 1
                    with self.lock:
                        for r in rows:
                            i = r["ts"] - T0_MS
                            if i in self.published and i not in self.seen:
                                self.seen[i] = now
                self.stop.wait(POLL_S)

    def latencies_ms(self) -> list[float]:
        with self.lock:
            return [(self.seen[i] - self.published[i]) * 1000 for i in self.seen]


def paced(producer: BatchProducer, poller: Poller, sim: str, rate: float, seconds: float, first: int = 0) -> int:
    """Produce posts at ``rate``/s for ``seconds``; returns how many."""
    serde = default_serde()
    events = post_events(sim, int(rate * seconds), first=first)
    encoded = [(topic_name(e.spec), e.key, serde.encode(e.type_name, e.record, topic=topic_name(e.spec))) for e in events]
    t0 = time.time()
    sent = 0
    while sent < len(encoded):
        due = min(len(encoded), int((time.time() - t0) * rate) + 1)
        while sent < due:
            topic, key, value = encoded[sent]
            producer.send(topic, key, value)
            with poller.lock:
                poller.published[first + sent] = time.time()
            sent += 1
        producer._producer.poll(0)
        time.sleep(TICK_S)
    producer.flush_blocking()
    return len(encoded)


def measure(producer: BatchProducer, base: str, rate: float | None, seconds: float) -> list[float]:
    sim = f"b4-{uuid.uuid4().hex[:8]}"
    poller = Poller(base, sim)
    poller.start()
    try:
        if rate is None:  # unloaded: single posts, 250 ms apart
            n = int(seconds / 0.25)
            for i in range(n):
                paced(producer, poller, sim, 1000.0, 0.001, first=i)
                time.sleep(0.25)
        else:
            n = paced(producer, poller, sim, rate, seconds)
        wait_until(lambda: len(poller.seen) >= n, timeout=120, what=f"{n} posts queryable in the API", every=0.2)
    finally:
        poller.stop.set()
        poller.join(5)
    return poller.latencies_ms()


def run(ctx: Ctx) -> dict:
    seconds = 4.0 if ctx.quick else 10.0
    from sinks.cassandra_store import CassandraStore

    w = start_workers(ctx, "agent,cassandra-sink", prefix="b4")
    ns = w.settings.namespace
    store = CassandraStore(w.settings)
    store.apply_schema()  # the API queries the namespace's keyspace before the sink's first write
    store.close()
    api_name = f"bench-api-{ns}"
    qdrant = ctx.settings.state_dir / "qdrant" / f"bench-{new_ns('q')}"
    start_process(ctx.settings, api_name, ["api"], env=worker_env(ns, MURMUR_QDRANT_PATH=str(qdrant)))
    ctx.workers.append(api_name)
    base = f"http://{ctx.settings.api_host}:{ctx.settings.api_port}"
    results: dict[str, list[list[float]]] = {"idle": [], "100": [], "1000": []}
    # One producer for the whole run, as a simulation feeding Murmur has: a
    # new idempotent producer holds its first records ~0.5 s for its
    # producer id, which the unloaded reference used to include.
    producer = BatchProducer(make_producer(ctx.settings))
    try:
        wait_members(ctx.settings, w.group_id, 1)
        wait_until(lambda: httpx.get(f"{base}/health", timeout=2).status_code == 200, timeout=90,
                   what=f"the API at {base}", every=0.5)
        measure(producer, base, None, 1.0)  # warm-up: connections, prepared statements, the producer id
        for _ in range(ctx.repeats):
            for key, rate in (("idle", None), ("100", 100.0), ("1000", 1000.0)):
                lat = measure(producer, base, rate, seconds if rate else 5.0)
                if not lat:
                    raise BenchError(f"no latencies at {key}")
                results[key].append(lat)
                ctx.log(f"  B4 {key}: p50 {percentile(lat, 50):.0f} ms, p99 {percentile(lat, 99):.0f} ms ({len(lat)} posts)")
    finally:
        stop_process(ctx.settings, api_name)
        ctx.workers.remove(api_name)
        stop_workers(ctx, w)
    idle_p50 = sorted(percentile(x, 50) for x in results["idle"])[len(results["idle"]) // 2]
    ref = "unloaded p50 (single posts), same run"
    figures = {"idle_p50_ms": figure([percentile(x, 50) for x in results["idle"]], unit="ms")}
    for key in ("100", "1000"):
        for q in (50, 99):
            figures[f"at_{key}_per_s_p{q}_ms"] = figure([percentile(x, q) for x in results[key]], unit="ms",
                                                        reference=ref, reference_value=idle_p50)
    return {"title": TITLE, "settings": {"seconds_per_rate": seconds, "poll_interval_ms": POLL_S * 1000,
                                         "publish_tick_ms": TICK_S * 1000, "processors": "agent,cassandra-sink",
                                         "llm": "deterministic"},
            "figures": figures}
