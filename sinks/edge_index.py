"""The HNSW index of a Qdrant Edge shard, built in a child process.

``EdgeShard.optimize()`` builds the index, but in qdrant-edge-py 0.9.0 it
holds the Python GIL until it is done (62 s at 100k points here): in the
API process, which serves retrieval and runs the Qdrant sink (ADR 0001),
nothing else would run for that long. So the store copies its flushed shard
to a new generation folder and this module, run as its own process
(``python -m sinks.edge_index <folder> <config-json>``), builds the index
there at low priority; the store then opens the copy, replays the writes it
took meanwhile and swaps it in (``sinks/qdrant_edge_store.py``, ADR 0006).

The child prints one JSON line: how long the build took and what it left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import qdrant_edge as qe

# Kilobytes of vectors (Qdrant's unit) below which a filtered subset is
# searched exactly rather than through its graph (10,000 KB: about 6,500
# points of 384 dimensions), and below which a segment is left unindexed.
# The store decides when a build is worth it (``qdrant_edge_index_after``),
# so the builder indexes whatever it finds.
FULL_SCAN_KB = 10_000
INDEXING_KB = 10


@dataclass(frozen=True)
class IndexParams:
    dim: int
    # Links per point in the graph of each simulation's public memories.
    m: int
    ef_construct: int


def edge_config(p: IndexParams) -> qe.EdgeConfig:
    """The shard's configuration, the same in the serving process and in the
    builder (loading with a different one rewrites it on disk).

    No whole-shard graph (m=0): Qdrant builds one per value of each payload
    index that enables HNSW (``payload_m``), here one per simulation's public
    memories (``sinks.qdrant_edge_store.INDEXES``)."""
    return qe.EdgeConfig(
        vectors=qe.EdgeVectorParams(size=p.dim, distance=qe.Distance.Cosine),
        hnsw_config=qe.HnswIndexConfig(m=0, ef_construct=p.ef_construct, full_scan_threshold=FULL_SCAN_KB,
                                       payload_m=p.m),
        optimizers=qe.EdgeOptimizersConfig(indexing_threshold=INDEXING_KB),
        # A search runs on one thread: the shard has one or two segments, and
        # handing them to a pool put 1 ms on the p99 at 100k on two cores
        # (4.0-4.3 against 3.0-3.5 ms) and made 1,000-agent batches no faster.
        max_search_threads=1,
    )


def start(folder: Path, params: IndexParams) -> subprocess.Popen:
    """The builder for a shard folder, started; ``finish`` collects it."""
    return subprocess.Popen([sys.executable, "-m", "sinks.edge_index", str(folder), json.dumps(asdict(params))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=str(Path(__file__).resolve().parent.parent))


def finish(proc: subprocess.Popen) -> dict:
    """Wait for a builder; its summary, or RuntimeError with its last words."""
    out, err = proc.communicate()
    if proc.returncode != 0:
        tail = (err or out or "").strip().splitlines()[-3:]
        raise RuntimeError(f"index build exited {proc.returncode}: {' | '.join(tail) or 'no output'}")
    return json.loads(out.strip().splitlines()[-1])


def build(folder: str, params: IndexParams) -> dict:
    os.nice(10)  # the serving process comes first on a shared machine
    started = time.perf_counter()
    shard = qe.EdgeShard.load(folder, edge_config(params))
    try:
        shard.optimize()
        shard.flush()
        info = shard.info()
        return {"seconds": round(time.perf_counter() - started, 3), "points": info.points_count,
                "indexed": info.indexed_vectors_count, "segments": info.segments_count}
    finally:
        shard.close()


def main(argv: list[str] | None = None) -> int:
    folder, raw = (argv if argv is not None else sys.argv[1:])[:2]
    print(json.dumps(build(folder, IndexParams(**json.loads(raw)))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
