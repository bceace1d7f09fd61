"""B3: the agent stage when the LLM bounds it.

The vLLM-like dev server (``streams/llm/devserver.py``, its own process as
vLLM would be) answers every request after 50 ms and processes at most 256
at once. The agent worker calls it with ``MURMUR_LLM__BACKEND=vllm``
(embeddings too) and ``MURMUR_LLM__MAX_CONCURRENCY`` = 1, 16, 64, 256
requests in flight, each carrying up to ``BATCH`` (32, the default
``batch_prompts``) prompts to ``/v1/completions``. With c requests in
flight and 50 ms each, the limit is min(c x 32, 256) / 0.05 s; the absolute
limit is capacity/latency = 5,120 calls/s. One call per event (the memory
call: importance, valence and contradictions); reflections add a few.

With 200 agents each agent's events are a chain of calls one after another;
with 3,000 agents (one to a few posts each) the chain is short and what
bounds the stage is the worker itself, measured with one worker process and
with two (this machine has two cores, shared with Kafka and the server).

Measured like B1 (a backlog; n / (last ScoredMemory - first publish), after
a warm-up post has opened the connections), plus the same calls
through the client alone (no Kafka, no Faust: ``asyncio.gather`` over
``LlmClient.complete_json``), which shows what the HTTP client itself allows.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from bench.common import (Ctx, end_offsets, figure, post_events, publish, rate_since, start_workers, stop_workers,
                          topic_size, topic_timestamps, wait_members, wait_until)
from streams.llm.devserver import spawn
from streams.topics import SCORED, topic_name

NAME = "B3"
TITLE = "agent stage against a 50 ms, capacity-256 LLM server, by client concurrency"
LATENCY_MS = 50.0
CAPACITY = 256
CONCURRENCY = (1, 16, 64, 256)
BATCH = 32  # settings.llm.batch_prompts' default


def limit_of(c: int) -> float:
    return min(c * BATCH, CAPACITY) / (LATENCY_MS / 1000)


def llm_env(url: str, concurrency: int) -> dict[str, str]:
    env = {"MURMUR_LLM__BACKEND": "vllm", "MURMUR_LLM__EMBED_BACKEND": "vllm",
           "MURMUR_LLM__MAX_CONCURRENCY": str(concurrency), "MURMUR_LLM__BATCH_PROMPTS": str(BATCH)}
    for role in ("FAST", "BALANCED", "HEAVY", "EMBED"):
        env[f"MURMUR_LLM__{role}__URL"] = url
    return env


def events_for(ctx: Ctx, c: int) -> int:
    """About 4 s of work at the limit, at least 100 events, bounded by what
    the workers can do anyway (enough for the first batch's ramp to weigh
    little: 4,000 events measured 12% under 12,000 at the same rate)."""
    seconds = 2 if ctx.quick else 4
    return int(max(100, min(limit_of(c) * seconds, 1_500 if ctx.quick else 12_000)))


AGENTS = 200  # post_events' default: each agent's events are read one after another
MANY_AGENTS = 3_000  # one or two posts each: the stage's parallelism is not the workload's limit


def worker_run(ctx: Ctx, url: str, c: int, n: int, agents: int = AGENTS, workers: int = 1) -> float:
    w = start_workers(ctx, "agent", prefix="b3", env=llm_env(url, c), count=workers)
    scored = topic_name(SCORED, w.settings.namespace)
    try:
        wait_members(ctx.settings, w.group_id, workers)
        publish(ctx.settings, post_events(f"warm-{uuid.uuid4().hex[:6]}", 1))
        wait_until(lambda: topic_size(ctx.settings, scored) >= 1, timeout=120, what="the warm-up output")
        start = end_offsets(ctx.settings, [scored])
        started = time.time()
        publish(ctx.settings, post_events(f"b3-{uuid.uuid4().hex[:8]}", n, agents=agents))
        wait_until(lambda: topic_size(ctx.settings, scored) >= n + 1, timeout=max(180.0, n / 10),
                   what=f"{n} ScoredMemory", every=0.3)
        return rate_since(started, topic_timestamps(ctx.settings, scored, start=start), n)
    finally:
        stop_workers(ctx, w)


async def client_run(url: str, c: int, n: int) -> float:
    """The same importance calls through LlmClient alone."""
    from streams.llm import LlmClient, importance_prompt
    from streams.settings import LlmRole, LlmSettings

    client = LlmClient(LlmSettings(backend="vllm", max_concurrency=c, batch_prompts=BATCH,
                                   fast=LlmRole(url=url, model="Qwen/Qwen2.5-1.5B-Instruct")))
    try:
        await client.complete_json("fast", importance_prompt("warm-up"))
        prompts = [importance_prompt(f"{post.record['content']}") for post in post_events("client", n)]
        t0 = time.perf_counter()
        await asyncio.gather(*(client.complete_json("fast", p) for p in prompts))
        return n / (time.perf_counter() - t0)
    finally:
        await client.aclose()


def run(ctx: Ctx) -> dict:
    stage: dict[int, list[float]] = {c: [] for c in CONCURRENCY}
    client: dict[int, list[float]] = {c: [] for c in CONCURRENCY}
    many: list[float] = []
    two: list[float] = []  # the same with two worker processes (this machine has 2 cores)
    with spawn(LATENCY_MS, CAPACITY) as (url, stats, reset):
        for _ in range(ctx.repeats):  # interleaved: drift hits every concurrency alike
            for c in CONCURRENCY:
                n = events_for(ctx, c)
                client[c].append(asyncio.run(client_run(url, c, n)))
                stage[c].append(worker_run(ctx, url, c, n))
                ctx.log(f"  B3 concurrency {c}: stage {stage[c][-1]:.0f}/s, client alone {client[c][-1]:.0f}/s "
                        f"({n} events; limit {limit_of(c):.0f}/s)")
            n = events_for(ctx, CONCURRENCY[-1])
            many.append(worker_run(ctx, url, CONCURRENCY[-1], n, agents=MANY_AGENTS))
            ctx.log(f"  B3 concurrency {CONCURRENCY[-1]}, {MANY_AGENTS} agents: stage {many[-1]:.0f}/s")
            two.append(worker_run(ctx, url, CONCURRENCY[-1], n, agents=MANY_AGENTS, workers=2))
            ctx.log(f"  B3 concurrency {CONCURRENCY[-1]}, {MANY_AGENTS} agents, 2 workers: stage {two[-1]:.0f}/s")
        server = stats()
    figures = {}
    for c in CONCURRENCY:
        limit = limit_of(c)
        ref = f"min({c} x {BATCH} prompts, capacity {CAPACITY}) / {LATENCY_MS:.0f} ms"
        figures[f"stage_c{c}"] = figure(stage[c], unit="events/s", reference=ref, reference_value=limit,
                                        events=events_for(ctx, c),
                                        ratio_to_capacity_limit=round(sorted(stage[c])[len(stage[c]) // 2]
                                                                      / (CAPACITY / (LATENCY_MS / 1000)), 4))
        figures[f"client_alone_c{c}"] = figure(client[c], unit="calls/s", reference=ref, reference_value=limit)
    c = CONCURRENCY[-1]
    figures[f"stage_c{c}_{MANY_AGENTS}_agents"] = figure(
        many, unit="events/s", reference=f"capacity {CAPACITY} / {LATENCY_MS:.0f} ms", reference_value=limit_of(c),
        events=events_for(ctx, c), ratio_to_capacity_limit=round(sorted(many)[len(many) // 2] / limit_of(c), 4))
    figures[f"stage_c{c}_{MANY_AGENTS}_agents_2_workers"] = figure(
        two, unit="events/s", reference=f"capacity {CAPACITY} / {LATENCY_MS:.0f} ms", reference_value=limit_of(c),
        events=events_for(ctx, c), ratio_to_capacity_limit=round(sorted(two)[len(two) // 2] / limit_of(c), 4))
    return {"title": TITLE, "settings": {"latency_ms": LATENCY_MS, "capacity": CAPACITY,
                                         "capacity_limit_per_s": CAPACITY / (LATENCY_MS / 1000),
                                         "concurrency": list(CONCURRENCY), "agents": AGENTS,
                                         "many_agents": MANY_AGENTS,
                                         "server_max_in_flight": server.get("max_in_flight"),
                                         "server_requests": server.get("requests")},
            "figures": figures}
