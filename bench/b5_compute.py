"""B5's batch compute alone: ``processors.batch.derive`` + ``verdicts`` on
events in memory, timed inside the coroutine, with a digest of every output
record's Avro bytes.

Workloads: B5's synthetic simulation (``synthetic``, its quick or full size)
or a finished OASIS database (``oasis:PATH``, real text). The digest is what
proves a speed change kept the outputs: run it before and after (or on two
checkouts, ``--tree``) and compare. ``--profile N`` prints cProfile's top N.

    .venv/bin/python bench/b5_compute.py synthetic --quick
    .venv/bin/python bench/b5_compute.py oasis:/path/to/reddit_simulation.db --profile 30
    .venv/bin/python bench/b5_compute.py synthetic --tree /tmp/base   # another checkout's code

Only the standard library is imported at module level: ``--tree`` must
decide which checkout's ``processors`` the run imports.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASE = ROOT / "eval" / "cases" / "ireland_smoking_ban_2004"


def workload(spec: str, *, quick: bool) -> tuple[str, list[tuple[str, dict]]]:
    """(sim id, events as (type name, record)) for ``synthetic`` or ``oasis:PATH``."""
    if spec == "synthetic":
        from connectors import synthetic
        agents, rounds = (60, 8) if quick else (250, 12)  # bench/b5_replay.py's sizes
        sim = f"b5-a{agents}-r{rounds}"
        run = synthetic.generate(CASE, sim_id=sim, seed=11, agents=agents, rounds=rounds)
        return sim, [(e.type_name, e.record) for e in run.events]
    if spec.startswith("oasis:"):
        from connectors import oasis
        from connectors.events import OutEvent
        path = Path(spec[len("oasis:"):])
        sim = f"b5-oasis-{path.parent.name}"
        try:
            parsed = oasis.parse_db(path, sim_id=sim)
            return sim, [(i.type_name, i.record) for i in parsed if isinstance(i, OutEvent)]
        except oasis.NotOasis as exc:  # a usage error, not a traceback
            raise SystemExit(f"b5_compute: {exc}") from None
    raise SystemExit(f"unknown workload {spec!r}: synthetic or oasis:PATH")


def compute(events: list[tuple[str, dict]], sim: str, settings=None,
            clock=time.process_time) -> tuple[float, list[tuple[str, list[dict]]]]:
    """(seconds by ``clock``, outputs by Avro type). Timed inside the coroutine,
    which returns nothing: ``asyncio.run`` calls repr() on a coroutine's
    result (CPython issue #112559), which on the whole output cost a fifth
    of the figure. The process's CPU time, not the wall clock: the run is
    one thread that never waits, and on a shared machine the wall clock
    also counts other processes' turns. B5 in the suite passes the wall
    clock (``time.perf_counter``), as its other figures are."""
    from processors import batch
    from streams.llm import DeterministicLlm
    from streams.settings import get_settings

    settings = settings or get_settings()
    rt = batch.BatchRuntime(settings, DeterministicLlm(settings))
    box: dict = {}

    async def run() -> None:
        t0 = clock()
        out = await batch.derive(rt, events)
        verdicts = await batch.verdicts(rt, out, sim_id=sim, question="")
        box["seconds"] = clock() - t0
        box["outputs"] = [("ScoredMemory", out.memories), ("ScoredMemory", out.reflection_memories),
                          ("Reflection", out.reflections), ("Conflict", out.conflicts), ("Verdict", verdicts)]

    asyncio.run(run())
    return box["seconds"], box["outputs"]


def clear_text_caches() -> int:
    """Empty the project's per-text caches (lru caches larger than a few
    entries: readings, embeddings), so every timed run reads its texts as a
    new process would; loaded models stay loaded. Returns how many."""
    import functools
    import gc

    n = 0
    for obj in gc.get_objects():
        if isinstance(obj, functools._lru_cache_wrapper) and \
                getattr(obj, "__module__", "").split(".")[0] in ("processors", "streams", "connectors"):
            size = obj.cache_parameters()["maxsize"]
            if size is None or size > 256:
                obj.cache_clear()
                n += 1
    return n


def digest(outputs: list[tuple[str, list[dict]]]) -> dict:
    """sha256 over every output record's Avro bytes, in output order, and counts."""
    from streams.serde import default_serde

    serde = default_serde()
    h = hashlib.sha256()
    counts: dict[str, int] = {}
    for type_name, records in outputs:
        for r in records:
            data = serde.encode(type_name, r)
            h.update(len(data).to_bytes(4, "big") + data)
        counts[type_name] = counts.get(type_name, 0) + len(records)
    return {"sha256": h.hexdigest(), "records": counts}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("workload", help="synthetic | oasis:PATH")
    p.add_argument("--quick", action="store_true", help="B5's quick size (60 agents x 8 rounds)")
    p.add_argument("--repeats", type=int, default=3,
                   help="timed runs, each in a fresh runtime with the text caches emptied (the first also pays "
                        "for lazy imports and loading the stance model)")
    p.add_argument("--profile", type=int, default=0, metavar="N", help="cProfile the last run, print the top N")
    p.add_argument("--sort", default="tottime", help="cProfile sort key (tottime, cumulative)")
    p.add_argument("--tree", type=Path, help="import the project from this checkout instead")
    args = p.parse_args(argv)
    if args.tree:
        sys.path.insert(0, str(args.tree.resolve()))
    sim, events = workload(args.workload, quick=args.quick)
    rates, result = [], {}
    for rep in range(args.repeats):
        clear_text_caches()
        if args.profile and rep == args.repeats - 1:
            import cProfile
            import pstats
            prof = cProfile.Profile()
            seconds, outputs = prof.runcall(compute, events, sim)
            pstats.Stats(prof, stream=sys.stderr).sort_stats(args.sort).print_stats(args.profile)
        else:
            seconds, outputs = compute(events, sim)
        rates.append(len(events) / seconds)
        if rep == 0:
            result = digest(outputs)
    import processors
    print(json.dumps({"workload": args.workload, "events": len(events), "code": str(Path(processors.__file__).parent),
                      "events_per_cpu_s": [round(r) for r in rates], **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
