"""Throughput of importance calls against the vLLM-like dev server, by concurrency.

Runs the same N importance calls (asyncio.gather) through LlmClient with
max_concurrency 1 and 64 against one dev server (fixed per-request latency,
capacity 256), prints events/s side by side and writes
bench/results/llm_concurrency.json.

The server runs in a subprocess by default, like a real vLLM server, so its
CPU does not share the client's GIL; --in-process runs it in a thread.

    python bench/llm_concurrency.py [--calls 200] [--latency-ms 50] [--concurrency 1 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from processors.llm import LlmClient, importance_prompt  # noqa: E402
from processors.llm.devserver import spawn  # noqa: E402
from streams.settings import LlmRole, LlmSettings  # noqa: E402

POSTS = [
    "Nice weather today.",
    "I am absolutely furious that Mayor Johnson cut the hospital budget by 40%! This is a disgrace.",
    "Does anyone know when the new park opens?",
    "The bus was late again, third time this week.",
]


@contextmanager
def thread_server(latency_ms: float, capacity: int):
    from processors.llm.devserver import DevServer, DevServerConfig

    with DevServer(DevServerConfig(latency_ms=latency_ms, capacity=capacity)) as srv:
        yield srv.url, srv.stats, srv.reset_stats


async def run_once(url: str, concurrency: int, calls: int) -> dict:
    settings = LlmSettings(backend="vllm", max_concurrency=concurrency,
                           fast=LlmRole(url=url, model="Qwen/Qwen2.5-1.5B-Instruct"))
    client = LlmClient(settings)
    try:
        # Not timed: imports and the first connection.
        await client.complete_json("fast", importance_prompt("warm-up"))
        prompts = [importance_prompt(f"{POSTS[i % len(POSTS)]} (#{i})") for i in range(calls)]
        t0 = time.perf_counter()
        results = await asyncio.gather(*(client.complete_json("fast", p) for p in prompts))
        seconds = time.perf_counter() - t0
    finally:
        await client.aclose()
    lat = sorted(r.latency_ms for r in results)
    return {
        "concurrency": concurrency,
        "calls": calls,
        "seconds": round(seconds, 3),
        "events_per_s": round(calls / seconds, 1),
        "latency_p50_ms": round(statistics.median(lat), 1),
        "latency_p95_ms": round(lat[int(0.95 * (len(lat) - 1))], 1),
        "ok": sum(r.status == "ok" for r in results),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--latency-ms", type=float, default=50.0)
    p.add_argument("--capacity", type=int, default=256)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 64])
    p.add_argument("--in-process", action="store_true", help="run the server in a thread of this process")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "llm_concurrency.json")
    a = p.parse_args()

    server = thread_server if a.in_process else spawn
    rows = []
    with server(a.latency_ms, a.capacity) as (url, stats, reset):
        for c in a.concurrency:
            reset()
            row = asyncio.run(run_once(url, c, a.calls))
            row["server_max_in_flight"] = stats()["max_in_flight"]
            rows.append(row)

    base = rows[0]["events_per_s"]
    for row in rows:
        row["speedup_vs_first"] = round(row["events_per_s"] / base, 2)
    # Waves of `concurrency` calls, each one server latency long.
    ideal = {r["concurrency"]: round(a.calls / (math.ceil(a.calls / r["concurrency"]) * a.latency_ms / 1000), 1)
             for r in rows}
    report = {
        "benchmark": "importance calls through LlmClient against processors.llm.devserver",
        "server": "thread" if a.in_process else "subprocess",
        "server_latency_ms": a.latency_ms,
        "server_capacity": a.capacity,
        "ideal_events_per_s": ideal,
        "results": rows,
        "machine": {"cpus": os.cpu_count(), "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
                    "python": platform.python_version(), "httpx": httpx.__version__},
        "ts": int(time.time()),
    }
    print(f"{'concurrency':>11} {'events/s':>9} {'seconds':>8} {'p50 ms':>7} {'p95 ms':>7} {'max in flight':>13}")
    for r in rows:
        print(f"{r['concurrency']:>11} {r['events_per_s']:>9} {r['seconds']:>8} {r['latency_p50_ms']:>7}"
              f" {r['latency_p95_ms']:>7} {r['server_max_in_flight']:>13}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {a.out.relative_to(ROOT) if a.out.is_relative_to(ROOT) else a.out}")


if __name__ == "__main__":
    main()
