"""B1: the Faust ceiling on this machine, and Murmur's agent stage and full
path (publish -> scored -> Cassandra row) as a fraction of it; 1 worker vs 2
workers of one group.

Every run is a backlog: the group is started (and has joined) before the
events are published, and the rate is n / (last output - first publish), so
worker start-up and group joins are outside the clock (the ceiling agents
time themselves from their first batch to the n-th event).

* ceiling, count-only: ``bench.faust_ceiling --mode count`` (no work);
* ceiling, consume+produce: the same agent producing each value through
  confluent-kafka, flushed per batch (Murmur's commit order, no work);
* agent stage (figures ``importance_*``, the name of the stage it replaced):
  ``murmur worker --processors agent`` (deterministic LLM and embedder:
  importance, then contradiction, reflection and stance per agent); rate
  from the Kafka timestamps of its ScoredMemory outputs;
* full path: ``agent,cassandra-sink`` in one worker; rate from the
  Cassandra WRITETIME of the timeline rows; with the sink's per-partition
  batches (now the default) and with one request per row (before the
  performance pass, ``MURMUR_CASSANDRA_WRITES=single``), side by side.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

from bench.common import (ROOT, BenchError, Ctx, cassandra_writetimes, delete_topics, figure, new_ns, post_events,
                          publish, rate_since, start_workers, stop_workers, topic_size, topic_timestamps,
                          wait_drained, wait_members, wait_until, worker_env)
from streams.app import group_id
from streams.kafka import BatchProducer, admin, make_producer
from streams.topics import SCORED, topic_name

NAME = "B1"
TITLE = "Faust ceiling vs Murmur's agent stage and full path"


def ceiling_run(ctx: Ctx, mode: str, n: int) -> float:
    from confluent_kafka.admin import NewTopic

    ns = new_ns("ceil")
    src, sink = f"{ns}.bench.source", f"{ns}.bench.sink"
    parts = ctx.settings.topic_partitions
    client = admin(ctx.settings)  # kept referenced: a collected client cancels its futures
    for f in client.create_topics([NewTopic(t, num_partitions=parts, replication_factor=1)
                                   for t in (src, sink)]).values():
        f.result()
    result = ctx.settings.state_dir / "run" / f"{ns}.json"
    result.parent.mkdir(parents=True, exist_ok=True)
    log = open(ctx.settings.state_dir / "run" / f"{ns}.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "bench.faust_ceiling", "--mode", mode, "--source", src,
                             "--sink", sink, "--events", str(n), "--result", str(result), "--group", "ceiling"],
                            cwd=ROOT, env=worker_env(ns), stdout=log, stderr=subprocess.STDOUT)
    nss = ctx.settings.model_copy(update={"namespace": ns})
    try:
        wait_members(ctx.settings, group_id(nss, "ceiling"), 1)
        producer = BatchProducer(make_producer(ctx.settings))
        value = b"x" * 344  # the size of an Avro Post of the benchmarks
        for i in range(n):
            producer.send(src, f"sim/a{i % 200}".encode(), value)
        producer.flush_blocking()

        def done() -> bool:
            if proc.poll() is not None:
                raise BenchError(f"ceiling app exited; see {log.name}")
            return result.exists()

        wait_until(done, timeout=max(120.0, n / 500), what=f"the {mode} agent to see {n} events", every=0.2)
        r = json.loads(result.read_text())
        return r["events"] / r["seconds"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        result.unlink(missing_ok=True)
        import shutil

        shutil.rmtree(ROOT / f"{group_id(nss, 'ceiling')}-data", ignore_errors=True)
        delete_topics(ctx.settings, [src, sink])


def stage_run(ctx: Ctx, n: int, workers: int, *, full: bool, writes: str = "batched") -> float:
    env = {"MURMUR_CASSANDRA_WRITES": writes}
    w = start_workers(ctx, "agent,cassandra-sink" if full else "agent", count=workers, prefix="b1", env=env)
    try:
        wait_members(ctx.settings, w.group_id, workers)
        sim = f"b1-{uuid.uuid4().hex[:8]}"
        started = time.time()
        publish(ctx.settings, post_events(sim, n))
        if not full:
            scored = topic_name(SCORED, w.settings.namespace)
            wait_until(lambda: topic_size(ctx.settings, scored) >= n, timeout=max(120.0, n / 100),
                       what=f"{n} ScoredMemory", every=0.5)
            return rate_since(started, topic_timestamps(ctx.settings, scored), n)
        wait_drained(ctx, w, timeout=max(180.0, n / 50))
        times = cassandra_writetimes(w.settings, "SELECT WRITETIME(content) FROM {ks}.timeline_by_sim WHERE sim_id = %s",
                                     (sim,))
        if len(times) < n:
            raise BenchError(f"only {len(times)}/{n} timeline rows after the sink drained")
        return rate_since(started, times, n)
    finally:
        stop_workers(ctx, w)


# (what, workers, Cassandra write mode); "importance" is the agent stage
# alone (the figures keep the name of the stage it replaced); "single" is the
# sink before the performance pass (one request per row), run side by side
# with the new one.
VARIANTS = [("importance", 1, "batched"), ("full_path", 1, "single"), ("full_path", 1, "batched"),
            ("importance", 2, "batched"), ("full_path", 2, "batched")]


def run(ctx: Ctx) -> dict:
    n_ceiling = 20_000 if ctx.quick else 40_000
    n_stage = 4_000 if ctx.quick else 10_000
    count, produce = [], []
    stage: dict[tuple[str, int, str], list[float]] = {}
    for rep in range(ctx.repeats):  # interleaved, so drift hits every variant alike
        count.append(ceiling_run(ctx, "count", n_ceiling))
        produce.append(ceiling_run(ctx, "produce", n_ceiling))
        ctx.log(f"  B1 ceiling: count-only {count[-1]:.0f}/s, consume+produce {produce[-1]:.0f}/s")
        for what, workers, writes in VARIANTS:
            v = stage_run(ctx, n_stage, workers, full=what != "importance", writes=writes)
            stage.setdefault((what, workers, writes), []).append(v)
            ctx.log(f"  B1 {what}, {workers} worker(s), {writes} Cassandra writes: {v:.0f}/s")
    ceiling = sorted(count)[len(count) // 2]
    ref = "Faust count-only agent, same run"
    figures = {
        "ceiling_count_only": figure(count, unit="events/s", events=n_ceiling),
        "ceiling_consume_produce": figure(produce, unit="events/s", reference=ref, reference_value=ceiling,
                                          events=n_ceiling),
    }
    for (what, workers, writes), vals in stage.items():
        name = f"{what}_{workers}w" + ("_single_writes" if writes == "single" else "")
        figures[name] = figure(vals, unit="events/s", reference=ref, reference_value=ceiling, events=n_stage,
                               workers=workers, cassandra_writes=writes)
    for what in ("importance", "full_path"):
        one = figures[f"{what}_1w"]["median"]
        figures[f"{what}_2w"]["ratio_to_1_worker"] = round(figures[f"{what}_2w"]["median"] / one, 3)
    # The performance pass, before/after in this run: one request per row vs per-partition batches.
    before = figures["full_path_1w_single_writes"]["median"]
    figures["full_path_1w"]["ratio_to_single_writes"] = round(figures["full_path_1w"]["median"] / before, 3)
    return {"title": TITLE, "settings": {"ceiling_events": n_ceiling, "stage_events": n_stage,
                                         "partitions": ctx.settings.topic_partitions, "llm": "deterministic"},
            "figures": figures}
