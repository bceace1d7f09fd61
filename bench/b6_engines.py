"""B6, retrieval and context by vector engine.

The same memories in each engine Murmur can open (``sinks/vector_stores.py``):
Qdrant Edge in-process (the default; ``edge_exact``: the same without
its HNSW index), a Qdrant server on loopback (``murmur
services up qdrant``; HNSW built by the server in the background) and
qdrant-client's local mode (the old default, at 10k only: it scans in
Python). N memories of 1,000 agents of one simulation, half of them public;
every search carries the visibility filter (the agent's own memories, or
public ones) and asks for ``candidates_for(10)`` candidates, as
``POST .../retrieve`` does.

Two kinds of vectors:
  * ``text``: the deterministic embedder's vectors (hashed words) of
    generated sentences, each mostly from one of 200 topics' words: text
    with neighbourhoods, as real embeddings have;
  * ``random``: independent Gaussian directions, where every point is about
    as far as every other (the worst case of an approximate index).

Reference, same run: exact search (numpy, the same filter) for the latency
floor and for recall@10 (the share of the exact top 10 the engine returned).

Context: ``GET .../agents/{agent}/context`` through the API's ASGI stack
(``TestClient``, no network) on the default engine, with each agent's
reflections and conflicts in Cassandra, and ``POST /simulations/{sim}/context``
for all 1,000 agents at once; ingest: points written per second by the
engine (the server's while it also indexes).
"""

from __future__ import annotations

import shutil
import time
import uuid

import numpy as np

from bench.common import Ctx, figure, percentile

AGENTS = 1_000
DIM = 384
TOPICS = 200
SIM = "b6"


def sentences(n: int, rng: np.random.Generator) -> list[str]:
    vocab = [f"w{i}" for i in range(20_000)]
    topics = [rng.choice(len(vocab), 40, replace=False) for _ in range(TOPICS)]
    out = []
    for i in range(n):
        own = topics[rng.integers(TOPICS)]
        words = [vocab[j] for j in rng.choice(own, rng.integers(6, 12))] + \
                [vocab[j] for j in rng.integers(0, len(vocab), rng.integers(2, 5))]
        out.append(" ".join(words) + f" #{i}")
    return out


def vectors(kind: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    if kind == "text":
        from streams.llm.embedder import hash_embed_array

        texts = sentences(n, rng)
        return np.stack([hash_embed_array(t, DIM) for t in texts]).astype(np.float32), texts
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True), [f"memory {i}" for i in range(n)]


def memories(x: np.ndarray, texts: list[str]) -> list[dict]:
    return [{"memory_id": f"m{i}", "sim_id": SIM, "agent_id": f"agent-{i % AGENTS:04d}", "kind": "post",
             "public": i % 2 == 0, "importance": 1 + i % 10, "round": i // AGENTS, "ts": 1_700_000_000_000 + i,
             "content": texts[i], "embedding_f32": x[i].tobytes()} for i in range(len(texts))]


def open_store(ctx: Ctx, engine: str, tag: str):
    """A store of ``engine`` in a place of its own, and its settings."""
    from sinks.vector_stores import open_vector_store

    if engine == "server":
        from deploy import local

        local.up(ctx.settings, ("qdrant",), log=lambda _m: None)
        url = f"http://127.0.0.1:{ctx.settings.services.qdrant_http_port}"
        settings = ctx.settings.model_copy(update={"qdrant_url": url, "qdrant_collection": f"bench_{tag}"})
    else:
        path = ctx.settings.state_dir / "bench-vectors" / tag
        settings = ctx.settings.model_copy(update={
            "qdrant_url": None, "qdrant_engine": "edge" if engine.startswith("edge") else engine, "qdrant_path": path,
            # edge_exact: the shard without its HNSW index (the default before the index was built in a child)
            **({"qdrant_edge_index_after": 0} if engine == "edge_exact" else {})})
    return open_vector_store(settings, dim=DIM), settings


def drop(engine: str, store, settings) -> None:
    if engine == "server":
        store.client.delete_collection(store.collection)
    store.close()
    if engine != "server":
        shutil.rmtree(settings.qdrant_path, ignore_errors=True)


def wait_indexed(store, n: int, timeout: float = 1_800.0) -> tuple[float, int]:
    """Seconds until the server's optimizers are through (status green,
    after the upserts returned), and how many vectors it indexed: segments
    under its indexing threshold (10 MB of vectors) stay unindexed and are
    searched exactly."""
    t0 = time.perf_counter()
    time.sleep(1.0)  # an optimization starts a moment after the writes
    while time.perf_counter() - t0 < timeout:
        info = store.client.get_collection(store.collection)
        if str(info.status).lower().endswith("green"):
            return time.perf_counter() - t0, info.indexed_vectors_count or 0
        time.sleep(1.0)
    raise TimeoutError(f"the Qdrant server was still optimizing after {timeout:.0f} s")


def searches(store, x: np.ndarray, queries: int, rng: np.random.Generator, limit: int) -> dict:
    """Latency of the filtered search, the numpy floor, and recall@10.

    The engine's searches run in one loop and the exact ones in another:
    interleaved, numpy's BLAS threads (which spin for a while after each
    product) competed with the next search for the two cores."""
    agents = np.arange(len(x)) % AGENTS
    public = np.arange(len(x)) % 2 == 0
    for q in range(100):  # a serving process is warm: first touches of the files are not measured
        store.search(sim_id=SIM, agent_id=f"agent-{q:04d}", vector=x[q].tolist(), limit=limit, include_public=True)
    asks = []
    for q in range(queries):
        v = x[rng.integers(len(x))] + rng.standard_normal(DIM).astype(np.float32) * 0.02  # near real memories
        asks.append((q * 37 % AGENTS, v / np.linalg.norm(v)))
    lat, found = [], []
    for agent, v in asks:
        t0 = time.perf_counter()
        found.append(store.search(sim_id=SIM, agent_id=f"agent-{agent:04d}", vector=v.tolist(), limit=limit,
                                  include_public=True))
        lat.append((time.perf_counter() - t0) * 1000)
    floor, recall = [], []
    for (agent, v), got in zip(asks, found):
        t0 = time.perf_counter()
        scores = x @ v
        scores[~((agents == agent) | public)] = -2
        exact = np.argpartition(-scores, 10)[:10]
        floor.append((time.perf_counter() - t0) * 1000)
        recall.append(len({p["memory_id"] for _, p in got[:10]} & {f"m{i}" for i in exact}) / 10)
    return {"lat": lat, "floor": floor, "recall": recall}


def engine_run(ctx: Ctx, engine: str, kind: str, n: int, queries: int) -> dict:
    from api.retrieval import candidates_for

    rng = np.random.default_rng(n + len(kind))
    x, texts = vectors(kind, n, rng)
    mems = memories(x, texts)
    store, settings = open_store(ctx, engine, f"{engine}_{kind}_{n}_{uuid.uuid4().hex[:6]}")
    try:
        t0 = time.perf_counter()
        for i in range(0, n, 2_000):
            store.upsert(mems[i:i + 2_000])
        load_s = time.perf_counter() - t0
        if engine == "server":
            index_s, indexed = wait_indexed(store, n)
        elif engine == "edge":  # builds ran in a child while the upserts went on; wait for the last
            t0 = time.perf_counter()
            status = store.wait_indexed()
            index_s, indexed = time.perf_counter() - t0, status["indexed"]
            ctx.log(f"  B6 edge index at {n:,}: {status['builds']} builds, {status['segments']} segments, "
                    f"last build {status['last_build']}")
        else:
            index_s, indexed = 0.0, 0
        out = searches(store, x, queries, rng, candidates_for(10))
        out.update(load_s=load_s, index_s=index_s, indexed=indexed, ingest_per_s=n / load_s)
        return out
    finally:
        drop(engine, store, settings)


def context_run(ctx: Ctx, n: int, queries: int, batches: int) -> dict:
    """The context endpoints on the default engine, through the API's stack."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from sinks.cassandra_store import CassandraStore
    from sinks.vector_stores import open_vector_store

    rng = np.random.default_rng(7)
    x, texts = vectors("text", n, rng)
    mems = memories(x, texts)
    ns = f"b6ctx{uuid.uuid4().hex[:6]}"
    path = ctx.settings.state_dir / "bench-vectors" / ns
    settings = ctx.settings.model_copy(update={"namespace": ns, "qdrant_url": None, "qdrant_path": path})
    store = open_vector_store(settings, dim=DIM)
    for i in range(0, n, 2_000):
        store.upsert(mems[i:i + 2_000])
    store.wait_indexed()
    store.close()
    db = CassandraStore(settings)
    try:
        db.apply_schema()
        newest = [{**m, "action": "CREATE_POST", "platform": "bench", "importance_fallback": False, "scorer": "bench",
                   "embedder": "deterministic", "source_topic": "bench", "source_partition": 0, "source_offset": i}
                  for i, m in enumerate(mems[-AGENTS:])]
        reflections = [{"event_id": f"r{a}-{k}", "sim_id": SIM, "agent_id": f"agent-{a:04d}", "ts": 1_800_000_000_000 + k,
                        "round": 9, "content": f"belief {k} of agent {a}: " + texts[a * 7 % n][:80],
                        "source_ids": [f"m{a}"], "importance": 7, "trigger": "threshold", "importance_sum": 150,
                        "backend": "bench"} for a in range(AGENTS) for k in range(3)]
        conflicts = [{"event_id": f"c{a}", "sim_id": SIM, "agent_id": f"agent-{a:04d}", "ts": 1_800_000_000_000,
                      "round": 9, "new_memory_id": f"m{a + AGENTS}", "old_memory_id": f"m{a}",
                      "old_ts": 1_700_000_000_000 + a, "new_content": texts[(a + AGENTS) % n][:80],
                      "old_content": texts[a][:80], "similarity": 0.9, "reason": "reversed", "confidence": 1.0,
                      "backend": "bench"} for a in range(AGENTS)]
        session = db.connect()
        for stmt, params in (db.memory_writes(newest) + db.reflection_writes(reflections)
                             + db.conflict_writes(conflicts)):
            session.execute(stmt, params)
        lat = []
        with TestClient(create_app(settings, run_qdrant_sink=False)) as client:
            for q in range(10):  # the first requests prepare statements and open connections
                client.get(f"/simulations/{SIM}/agents/agent-{q:04d}/context", params={"query": texts[q]})
            for q in range(queries):
                agent = f"agent-{q * 37 % AGENTS:04d}"
                t0 = time.perf_counter()
                r = client.get(f"/simulations/{SIM}/agents/{agent}/context", params={"query": texts[q * 11 % n]})
                lat.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200 and r.json()["memories"], r.text
            batch_s = []
            body = {"agents": [{"agent_id": f"agent-{a:04d}", "query": texts[a * 13 % n]} for a in range(AGENTS)]}
            for _ in range(batches):
                t0 = time.perf_counter()
                r = client.post(f"/simulations/{SIM}/context", json=body)
                batch_s.append(time.perf_counter() - t0)
                assert r.status_code == 200 and len(r.json()["contexts"]) == AGENTS, r.text[:300]
        return {"lat": lat, "batch_s": batch_s}
    finally:
        session = db.connect()
        session.execute(f"DROP KEYSPACE IF EXISTS {db.keyspace}", timeout=120)
        db.close()
        shutil.rmtree(path, ignore_errors=True)


ENGINES = {"edge": "Qdrant Edge in-process, HNSW per simulation's public memories built in a "
                   "child process (docs/adr/0007)",
           "edge_exact": "Qdrant Edge in-process, no HNSW index (exact)",
           "server": "Qdrant server 1.16.3 on loopback, indexed in the background",
           "local": "qdrant-client local mode"}


def figures(ctx: Ctx) -> tuple[dict, dict]:
    sizes = (10_000,) if ctx.quick else (10_000, 100_000)
    # p99 of 1,000 queries is their tenth slowest; of 300 it was the third,
    # one scheduling hiccup on two cores moved it by milliseconds.
    queries = 100 if ctx.quick else 1_000
    out, settings = {}, {"engines": {}, "queries": queries, "agents": AGENTS, "dim": DIM}
    plan = [(e, k, n) for n in sizes for k in ("text", "random") for e in ("edge", "edge_exact", "server")]
    plan += [("local", "text", 10_000)]  # the old default; 2 s a query at 100k
    if ctx.million:
        # Measured, not extrapolated: the default engine on text-like vectors.
        # Not the server: its HNSW build took 171 s at 100k on this machine's
        # two cores, so 1M would take the better part of an hour.
        plan += [("edge", "text", 1_000_000)]
    for engine, kind, n in plan:
        r = engine_run(ctx, engine, kind, n, 30 if engine == "local" else 300 if n >= 1_000_000 else queries)
        retrieval_figures(ctx, out, engine, kind, n, r)
    context_figures(ctx, out, sizes, queries)
    settings["engines"] = ENGINES
    settings["sizes"] = list(sizes)
    return out, settings


def retrieval_figures(ctx: Ctx, out: dict, engine: str, kind: str, n: int, r: dict) -> None:
    label = f"{engine}_{kind}_{n // 1000}k"
    f50, f99 = percentile(r["floor"], 50), percentile(r["floor"], 99)
    out[f"retrieve_{label}_p50_ms"] = figure([percentile(r["lat"], 50)], unit="ms", digits=2,
                                             reference="exact search (numpy) p50, same vectors and filter",
                                             reference_value=f50, queries=len(r["lat"]))
    out[f"retrieve_{label}_p99_ms"] = figure([percentile(r["lat"], 99)], unit="ms", digits=2,
                                             reference="exact search (numpy) p99, same vectors and filter",
                                             reference_value=f99, queries=len(r["lat"]))
    out[f"recall10_{label}"] = figure([float(np.mean(r["recall"]))], unit="share", digits=3,
                                      note="of the exact top 10 (same filter) among the engine's first 10")
    indexing = {"server": f"; then {r['index_s']:.0f} s until the server's optimizers were through "
                          f"({r['indexed']:,} vectors in HNSW)",
                "edge": f", index builds running in a child meanwhile; then {r['index_s']:.0f} s until the last "
                        f"build was swapped in ({r['indexed']:,} vectors in HNSW)"}.get(engine, "")
    out[f"ingest_{label}_per_s"] = figure([r["ingest_per_s"]], unit="points/s",
                                          note="upserts of 2,000 points" + indexing)
    ctx.log(f"  B6 {label}: p50 {percentile(r['lat'], 50):.2f} ms, p99 {percentile(r['lat'], 99):.2f} ms, "
            f"recall@10 {np.mean(r['recall']):.3f} (exact {f50:.2f}/{f99:.2f} ms); "
            f"{r['ingest_per_s']:.0f} points/s{indexing}")


def context_figures(ctx: Ctx, out: dict, sizes, queries: int) -> None:
    for n in sizes:
        c = context_run(ctx, n, queries, 2 if ctx.quick else 3)
        label = f"{n // 1000}k"
        out[f"context_{label}_p50_ms"] = figure([percentile(c["lat"], 50)], unit="ms", digits=2, queries=len(c["lat"]),
                                                note="GET .../context through the ASGI stack, default engine, 512-token budget")
        out[f"context_{label}_p99_ms"] = figure([percentile(c["lat"], 99)], unit="ms", digits=2, queries=len(c["lat"]))
        out[f"context_batch_1000_agents_{label}_s"] = figure(c["batch_s"], unit="s", digits=2,
                                                             note="POST /simulations/{sim}/context, 1,000 agents")
        ctx.log(f"  B6 context {label}: p50 {percentile(c['lat'], 50):.1f} ms, p99 {percentile(c['lat'], 99):.1f} ms; "
                f"1,000 agents in one request {min(c['batch_s']):.2f}-{max(c['batch_s']):.2f} s")


def million(argv: list[str] | None = None) -> int:
    """``python -m bench.b6_engines``: the default engine alone at 1M
    text-like memories (index builds included), without the rest of B6;
    figures in bench/results/b6-million-index.json."""
    import json
    from pathlib import Path

    from streams.settings import get_settings

    ctx = Ctx(settings=get_settings(), quick=False, repeats=1, million=True, log=lambda m: print(m, flush=True))
    out: dict = {}
    retrieval_figures(ctx, out, "edge", "text", 1_000_000, engine_run(ctx, "edge", "text", 1_000_000, 300))
    path = Path(__file__).resolve().parent / "results" / "b6-million-index.json"
    path.write_text(json.dumps({"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seconds": round(ctx.elapsed(), 1),
                                "engines": ENGINES, "figures": out}, indent=2) + "\n")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(million())
