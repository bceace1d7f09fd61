"""Run Murmur's benchmarks (B1..B8) on the real local Kafka and Cassandra,
print a table and write bench/results/<name>.json.

    python -m bench.run                # every benchmark, full size (~20 min on 2 cores)
    python -m bench.run --quick        # small sizes, one repeat: a smoke run
    python -m bench.run --only B1,B3   # some of them
    python -m bench.run --only B6 --million   # B6 also at 1M memories

The services are started (``deploy.local.up``) unless already running; use
``MURMUR_*`` variables to point at other ports. Each figure carries
min/median/max over its repeats and its ratio to a reference measured in the
same run (B2's: MiroFish's own runner, run as a separate process when its
folder is there). No benchmark asserts a time: figures are reported, not judged.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import Ctx, machine  # noqa: E402

BENCHMARKS = {
    "B1": "bench.b1_ceiling",
    "B2": "bench.b2_mirofish",
    "B3": "bench.b3_llm_bound",
    "B4": "bench.b4_latency",
    "B5": "bench.b5_replay",
    "B6": "bench.b6_retrieve_restore",
    "B7": "bench.b7_llm_cost",
    "B8": "bench.b8_before_after",
}


def fmt(v) -> str:
    if isinstance(v, float) and abs(v) >= 100:
        return f"{v:,.0f}"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def table(results: dict) -> str:
    lines = [f"{'':4} {'figure':<38} {'median':>10} {'min..max':>19} {'unit':<9} {'ratio':>7}  reference"]
    for key, bench in results["benchmarks"].items():
        if "error" in bench:
            lines.append(f"{key:4} FAILED: {bench['error'].splitlines()[-1][:100]}")
            continue
        for name, f in bench["figures"].items():
            span = f"{fmt(f['min'])}..{fmt(f['max'])}"
            ratio = f"{f['ratio']:.3g}" if "ratio" in f else ""
            ref = f.get("reference", "")
            if "reference_value" in f:
                ref += f" ({fmt(f['reference_value'])})"
            lines.append(f"{key:4} {name:<38} {fmt(f['median']):>10} {span:>19} {f['unit']:<9} {ratio:>7}  {ref}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes and one repeat (a smoke run)")
    p.add_argument("--only", default="", help="comma-separated subset, e.g. B1,B3")
    p.add_argument("--million", action="store_true", help="B6 also at 1M memories (tens of minutes)")
    p.add_argument("--repeats", type=int, default=None, help="repeats per figure (default 2, quick 1)")
    p.add_argument("--name", default=None, help="results file name (default: full, quick, or the subset)")
    a = p.parse_args(argv)

    only = [b.strip().upper() for b in a.only.split(",") if b.strip()] or list(BENCHMARKS)
    unknown = [b for b in only if b not in BENCHMARKS]
    if unknown:
        p.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    name = a.name or ("quick" if a.quick else "full") + ("" if len(only) == len(BENCHMARKS) else "-" + "-".join(only))

    from deploy import local
    from sinks.cassandra_store import CassandraStore
    from streams.kafka import create_topics
    from streams.settings import get_settings

    import signal

    def stop(signum, _frame):  # SIGTERM: still stop this run's workers (the finally below)
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    settings = get_settings()
    print(f"services: Kafka {settings.kafka_bootstrap}, Cassandra port {settings.cassandra_port}", flush=True)
    for svc, state in local.up(settings, log=lambda m: print(f"  {m}", flush=True)).items():
        print(f"  {svc}: {state}", flush=True)
    create_topics(settings)
    store = CassandraStore(settings)
    store.apply_schema()
    store.close()

    ctx = Ctx(settings=settings, quick=a.quick, repeats=a.repeats or (1 if a.quick else 2), million=a.million,
              log=lambda m: print(m, flush=True))
    results = {"name": name, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine(settings),
               "settings": {"quick": a.quick, "repeats": ctx.repeats, "partitions": settings.topic_partitions,
                            "only": only},
               "benchmarks": {}}
    out_file = ROOT / "bench" / "results" / f"{name}.json"
    out_file.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after every benchmark: an interrupted run keeps what it measured
        results["seconds"] = round(ctx.elapsed(), 1)
        out_file.write_text(json.dumps(results, indent=2) + "\n")

    try:
        for key in only:
            mod = importlib.import_module(BENCHMARKS[key])
            print(f"{key}: {mod.TITLE}", flush=True)
            t0 = time.monotonic()
            try:
                out = mod.run(ctx)
            except Exception:
                out = {"title": mod.TITLE, "error": traceback.format_exc()}
                print(out["error"], file=sys.stderr, flush=True)
            out["seconds"] = round(time.monotonic() - t0, 1)
            results["benchmarks"][key] = out
            save()
            print(f"{key}: done in {out['seconds']:.0f}s", flush=True)
    finally:
        from deploy.pipeline import stop_process

        for w in list(ctx.workers):  # a failed benchmark's workers
            stop_process(settings, w)
    save()
    print()
    print(table(results))
    print(f"\n{len(only)} benchmark(s) in {results['seconds']:.0f}s; written to {out_file.relative_to(ROOT)}")
    return 1 if any("error" in b for b in results["benchmarks"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
