"""B6: retrieval latency with 10k and 100k memories, and checkpoint restore time.

Retrieval: the API's retrieve path without HTTP and the query embedding:
``QdrantStore.search`` (local, in-process Qdrant, as deployed by default;
visibility filter: the agent's own memories plus public ones) for
``candidates_for(top_k=10)`` candidates, then ``api.retrieval.rank``. The
collection holds N memories of 1,000 agents (half public) with random unit
384-d vectors. Reference, same run: the same top-k with the same filter as
one numpy product over the same vectors (the compute floor of a brute-force
search, which is what local mode does).

Restore: ``streams.checkpoints.restore`` of a checkpoint whose table
changelogs hold N records, modelled as one state write of ~1 KiB per event
spread over the four tables (per-agent state keyed by 1,000 agents; the
verdict's applied-ids table one key per record). Measured at 100k and 300k
records (quick: 30k); 1M is extrapolated linearly from those two and labelled
so. Reference: the time to read the same changelogs once with a plain
consumer (restore reads them, then rewrites the compacted keys).
"""

from __future__ import annotations

import shutil
import time
import uuid

import numpy as np

from bench.common import Ctx, delete_topics, figure, new_ns, percentile, topic_timestamps

NAME = "B6"
TITLE = "retrieve latency by collection size; checkpoint restore time by changelog size"
AGENTS = 1_000
DIM = 384


def memories(n: int, rng: np.random.Generator) -> list[dict]:
    vecs = rng.standard_normal((n, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return [{"memory_id": f"m{i}", "sim_id": "b6", "agent_id": f"agent-{i % AGENTS:04d}", "kind": "post",
             "public": i % 2 == 0, "importance": 1 + i % 10, "round": i // AGENTS, "ts": 1_700_000_000_000 + i,
             "content": f"memory {i}", "embedding": vecs[i].tolist()} for i in range(n)]


def retrieve_latencies(ctx: Ctx, n: int, queries: int) -> tuple[list[float], list[float], float]:
    from api.retrieval import Weights, candidates_for, rank
    from sinks.qdrant_store import QdrantStore

    rng = np.random.default_rng(n)
    path = ctx.settings.state_dir / "qdrant" / f"bench-{uuid.uuid4().hex[:8]}"
    store = QdrantStore(ctx.settings.model_copy(update={"qdrant_path": path}), dim=DIM, collection="bench")
    try:
        mems = memories(n, rng)
        t0 = time.perf_counter()
        for i in range(0, n, 2_000):
            store.upsert(mems[i:i + 2_000])
        load_s = time.perf_counter() - t0
        mat = np.array([m["embedding"] for m in mems], dtype=np.float32)
        agents = np.array([i % AGENTS for i in range(n)])
        public = np.array([m["public"] for m in mems])
        limit = candidates_for(10)
        lat, floor = [], []
        for q in range(queries):
            agent = q * 37 % AGENTS
            vec = rng.standard_normal(DIM).astype(np.float32)
            vec /= np.linalg.norm(vec)
            t0 = time.perf_counter()
            cands = store.search(sim_id="b6", agent_id=f"agent-{agent:04d}", vector=vec.tolist(), limit=limit,
                                 include_public=True)
            rank(cands, agent_id=f"agent-{agent:04d}", include_public=True, reference_ts=1_700_000_000_000 + n,
                 weights=Weights(), half_life_s=3600, top_k=10)
            lat.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            scores = mat @ vec
            scores[~((agents == agent) | public)] = -2
            np.argpartition(-scores, limit)[:limit]
            floor.append((time.perf_counter() - t0) * 1000)
        return lat, floor, load_s
    finally:
        store.close()
        shutil.rmtree(path, ignore_errors=True)


def restore_time(ctx: Ctx, records: int) -> tuple[float, float]:
    """(restore seconds, plain read seconds) for changelogs of ``records`` records."""
    from streams import checkpoints as ck
    from streams.topology import changelog_topics, resolve
    from streams.kafka import BatchProducer, ensure_topics, make_producer

    ns = new_ns("b6ck")
    nss = ctx.settings.model_copy(update={"namespace": ns})
    logs = changelog_topics(nss, "bench", resolve("all"))
    ensure_topics(nss, {t: (nss.topic_partitions, {"cleanup.policy": "compact"}) for t in logs.values()})
    producer = BatchProducer(make_producer(nss))
    tables = sorted(logs)
    pad = "x" * 900
    for i in range(records):
        table = tables[i % len(tables)]
        key = f"b6/rec-{i}" if table == "verdict-applied" else f"b6/agent-{i % AGENTS:04d}"
        producer.send(logs[table], key.encode(), f'{{"n": {i}, "state": "{pad}"}}'.encode())
    producer.flush_blocking()
    try:
        t0 = time.perf_counter()
        for t in logs.values():
            topic_timestamps(nss, t)  # one plain read of everything restore will read
        read_s = time.perf_counter() - t0
        record = ck.create(nss, processors="all", group="bench", note="bench B6")
        ck.save(nss, record)
        t0 = time.perf_counter()
        ck.restore(nss, record["event_id"])
        return time.perf_counter() - t0, read_s
    finally:
        delete_topics(nss, list(logs.values()))


def run(ctx: Ctx) -> dict:
    sizes = (10_000, 30_000) if ctx.quick else (10_000, 100_000)
    # Local Qdrant filters point by point in Python (~30 ms per 1k points
    # here): few queries at the large size keep the run short.
    queries = {10_000: 50, 30_000: 15, 100_000: 20}
    figures, load = {}, {}
    for n in sizes:
        lat, floor, load_s = retrieve_latencies(ctx, n, queries[n])
        load[n] = round(load_s, 1)
        label = f"{n // 1000}k"
        f50, f99 = percentile(floor, 50), percentile(floor, 99)
        figures[f"retrieve_{label}_p50_ms"] = figure([percentile(lat, 50)], unit="ms", digits=2, queries=len(lat),
                                                     reference="numpy brute force p50, same vectors", reference_value=f50)
        figures[f"retrieve_{label}_p99_ms"] = figure([percentile(lat, 99)], unit="ms", digits=2, queries=len(lat),
                                                     reference="numpy brute force p99, same vectors", reference_value=f99)
        ctx.log(f"  B6 retrieve {label}: p50 {percentile(lat, 50):.1f} ms, p99 {percentile(lat, 99):.1f} ms "
                f"(numpy floor {f50:.2f} ms; loading took {load_s:.0f} s)")
    points = (30_000,) if ctx.quick else (100_000, 300_000)
    restore: dict[int, list[float]] = {}
    read: dict[int, list[float]] = {}
    for n in points:
        for _ in range(1):  # one each: a restore at 300k takes minutes here
            r, p = restore_time(ctx, n)
            restore.setdefault(n, []).append(r)
            read.setdefault(n, []).append(p)
            ctx.log(f"  B6 restore, {n:,} changelog records: {r:.1f} s (plain read {p:.1f} s)")
    for n in points:
        figures[f"restore_{n // 1000}k_s"] = figure(restore[n], unit="s", digits=2,
                                                   reference="plain read of the same changelogs",
                                                   reference_value=sorted(read[n])[len(read[n]) // 2])
    if len(points) == 2:
        (a, b) = points
        ra, rb = (sorted(restore[x])[len(restore[x]) // 2] for x in points)
        slope = (rb - ra) / (b - a)
        est = rb + slope * (1_000_000 - b)
        figures["restore_1M_s_EXTRAPOLATED"] = figure([est], unit="s", digits=1,
                                                      note=f"linear from {a:,} and {b:,} records; not measured")
    return {"title": TITLE, "settings": {"retrieve_sizes": list(sizes), "queries": {str(k): v for k, v in queries.items() if k in sizes}, "agents": AGENTS,
                                         "dim": DIM, "top_k": 10, "qdrant": "local (in-process)",
                                         "load_seconds": load, "restore_records": list(points),
                                         "restore_model": "one ~1 KiB state write per event over 4 tables"},
            "figures": figures}
