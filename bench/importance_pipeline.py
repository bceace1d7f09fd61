"""Events/s through the importance processor (a real Faust worker on the real
local Kafka) with the LLM served by the vLLM-like dev server, at several
client concurrencies, side by side in one run; plus LLM calls per 1,000
events by role for the whole pipeline on the bundled example.

For each concurrency: a fresh namespace (own consumer group and output
topics), a worker started from the end of the input topics, N posts
published, and the time from the first publish to the N-th ScoredMemory
of that run. The dev server answers after --latency-ms with --capacity
requests in flight (vLLM's scheduler), so the limit is capacity/latency.

    python bench/importance_pipeline.py [--events 600] [--latency-ms 50] [--concurrency 1 64] [--repeats 3]

Needs the local services (`murmur services up`). Prints a table and writes
bench/results/importance_pipeline.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from confluent_kafka import KafkaError  # noqa: E402

from connectors.events import OutEvent  # noqa: E402
from connectors.publish_cli import expand, run_publish  # noqa: E402
from connectors.publisher import Publisher  # noqa: E402
from deploy import local  # noqa: E402
from deploy.pipeline import EXAMPLE, stop_process, start_process  # noqa: E402
from processors.llm.devserver import spawn  # noqa: E402
from streams.app import group_id  # noqa: E402
from processors.worker import input_topics, resolve  # noqa: E402
from streams.kafka import create_topics, make_consumer, start_group_at_end  # noqa: E402
from streams.serde import default_serde  # noqa: E402
from streams.settings import get_settings  # noqa: E402
from streams.topics import LLM_CALLS, POSTS, SCORED, agent_key, topic_name  # noqa: E402

TEXTS = [
    "Nice weather today.",
    "I am absolutely furious that the council cut the hospital budget by 40%! This is a disgrace.",
    "The Riverside bike lane plan will make my commute safer. I support it!",
    "Has anyone read the traffic study behind the plan?",
    "Historic vote tonight: 12 million for new buses. I believe it will change the city.",
]


def worker_env(ns: str, url: str, concurrency: int) -> dict[str, str]:
    env = {**os.environ, "MURMUR_NAMESPACE": ns, "MURMUR_LLM__BACKEND": "vllm", "MURMUR_LLM__EMBED_BACKEND": "vllm",
           "MURMUR_LLM__MAX_CONCURRENCY": str(concurrency)}
    for role in ("FAST", "BALANCED", "HEAVY", "EMBED"):
        env[f"MURMUR_LLM__{role}__URL"] = url
    return env


def start_worker(settings, ns: str, processors: str, group: str, env: dict[str, str]) -> str:
    """A worker in its own namespace whose group starts at the end of its
    inputs (committed before it starts), so it sees only this run's events."""
    nss = settings.model_copy(update={"namespace": ns})
    create_topics(nss, namespace=ns)
    start_group_at_end(nss, group_id(nss, group), input_topics(nss, resolve(processors)))
    name = f"bench-worker-{ns}"
    start_process(settings, name, ["worker", "--processors", processors, "--group", group], env=env)
    return name


def count_outputs(settings, topic: str, sim: str, want: int, timeout: float) -> float:
    """Block until `want` ScoredMemory of `sim` are on `topic`; return the time."""
    serde = default_serde()
    consumer = make_consumer(settings, **{"enable.partition.eof": False})
    consumer.subscribe([topic])
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    try:
        while len(seen) < want:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(seen)}/{want} outputs after {timeout}s")
            for msg in consumer.consume(1000, 0.2):
                if msg.error() and msg.error().code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(str(msg.error()))
                if not msg.error():
                    _, rec = serde.decode(msg.value())
                    if rec["sim_id"] == sim:
                        seen.add(rec["memory_id"])
        return time.monotonic()
    finally:
        consumer.close()


def publish_posts(settings, sim: str, ns: str, events: int) -> None:
    Publisher(settings).publish([OutEvent(POSTS, agent_key(sim, f"a{i % 200}"), {
        "event_id": f"{sim}-{i}", "sim_id": sim, "round": i // 200, "ts": 1_700_000_000_000 + i,
        "agent_id": f"a{i % 200}", "agent_name": "", "platform": "bench", "action": "CREATE_POST",
        "content": f"{TEXTS[i % len(TEXTS)]} #{i}", "post_id": None, "parent_id": None, "source": "bench",
        "source_ref": "bench"}) for i in range(events)])


def one_run(settings, server_url: str, concurrency: int, events: int) -> float:
    ns = f"bench{uuid.uuid4().hex[:8]}"
    name = start_worker(settings, ns, "importance", "importance", worker_env(ns, server_url, concurrency))
    try:
        # Warm-up: one post through, so the worker is assigned and its LLM
        # connections open before the clock starts.
        publish_posts(settings, f"warm-{ns}", ns, 1)
        count_outputs(settings, topic_name(SCORED, ns), f"warm-{ns}", 1, timeout=180)
        sim = f"bench-{ns}"
        import threading

        done: dict[str, float] = {}
        t = threading.Thread(target=lambda: done.update(t=count_outputs(
            settings, topic_name(SCORED, ns), sim, events, timeout=max(120.0, events * 0.2))))
        t.start()
        time.sleep(1.0)  # the counting consumer is assigned before the first output
        t0 = time.monotonic()
        publish_posts(settings, sim, ns, events)
        t.join()
        return events / (done["t"] - t0)
    finally:
        stop_process(settings, name)


def llm_calls_per_1000(settings, server_url: str) -> dict:
    """The whole pipeline (all processors) on the bundled example, LLM over HTTP."""
    ns = f"benchcalls{uuid.uuid4().hex[:6]}"
    name = start_worker(settings, ns, "importance,reflection,contradiction,stance,verdict", "calls",
                        worker_env(ns, server_url, 64))
    sim = f"calls-{ns}"
    try:
        counts = run_publish(settings, expand([EXAMPLE]), sim=sim, show_progress=False)
        n_events = counts.published.get("Post", 0) + counts.published.get("Observation", 0)
        time.sleep(15)  # let reflection and contradiction finish (they follow the scored stream)
        serde = default_serde()
        consumer = make_consumer(settings)
        consumer.subscribe([topic_name(LLM_CALLS, ns)])
        calls, tokens = Counter(), Counter()
        idle = 0
        while idle < 5:
            msgs = consumer.consume(1000, 0.5)
            if not [m for m in msgs if not m.error()]:
                idle += 1
                continue
            idle = 0
            for m in msgs:
                if m.error():
                    continue
                _, r = serde.decode(m.value())
                if r["sim_id"] in (sim, ""):
                    calls[r["role"]] += 1
                    tokens[r["role"]] += r["prompt_tokens"] + r["completion_tokens"]
        consumer.close()
        return {"events": n_events,
                "calls_per_1000_events": {k: round(v * 1000 / n_events, 1) for k, v in sorted(calls.items())},
                "tokens_per_1000_events": {k: round(v * 1000 / n_events) for k, v in sorted(tokens.items())}}
    finally:
        stop_process(settings, name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=600)
    ap.add_argument("--latency-ms", type=float, default=50.0)
    ap.add_argument("--capacity", type=int, default=256)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 64])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "importance_pipeline.json")
    args = ap.parse_args()

    settings = get_settings()
    local.up(settings, log=lambda m: None)
    create_topics(settings)
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "platform": platform.platform()},
                     "settings": {"events": args.events, "latency_ms": args.latency_ms, "capacity": args.capacity,
                                  "limit_events_per_s": args.capacity / (args.latency_ms / 1000)},
                     "importance_events_per_s": {}}
    # The server in its own process, as vLLM would be: its CPU is not the worker's.
    with spawn(args.latency_ms, args.capacity) as (server_url, _stats, _reset):
        runs: dict[int, list[float]] = {c: [] for c in args.concurrency}
        for _ in range(args.repeats):  # interleaved: A B A B, so drift hits both alike
            for c in args.concurrency:
                runs[c].append(one_run(settings, server_url, c, args.events))
                print(f"  concurrency {c}: {runs[c][-1]:.1f} events/s", flush=True)
        base = statistics.median(runs[args.concurrency[0]])
        for c, vals in runs.items():
            results["importance_events_per_s"][str(c)] = {
                "min": round(min(vals), 1), "median": round(statistics.median(vals), 1), "max": round(max(vals), 1),
                "ratio_to_concurrency_%d" % args.concurrency[0]: round(statistics.median(vals) / base, 2)}
        results["llm_calls"] = llm_calls_per_1000(settings, server_url)
    print(f"\nimportance processor, {args.events} posts, LLM at {args.latency_ms:.0f} ms/call, capacity {args.capacity}"
          f" (limit {results['settings']['limit_events_per_s']:.0f} events/s)")
    print(f"{'concurrency':>12} {'min':>8} {'median':>8} {'max':>8} {'ratio':>7}")
    for c, r in results["importance_events_per_s"].items():
        ratio = next(v for k, v in r.items() if k.startswith("ratio"))
        print(f"{c:>12} {r['min']:>8} {r['median']:>8} {r['max']:>8} {ratio:>7}")
    print(f"\nLLM calls per 1,000 events (whole pipeline, bundled example, {results['llm_calls']['events']} events):")
    print(f"  calls:  {results['llm_calls']['calls_per_1000_events']}")
    print(f"  tokens: {results['llm_calls']['tokens_per_1000_events']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
