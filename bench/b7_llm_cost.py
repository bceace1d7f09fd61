"""B7: LLM calls and tokens per 1,000 events, per role.

The whole pipeline (every stage) with the LLM over HTTP
(``MURMUR_LLM__BACKEND=vllm``, embeddings too) against the vLLM-like dev
server (5 ms per call, so the run is short; its token counts are len/4
estimates, as ``streams/llm/records.py`` makes them), on a synthetic
simulation. Every call is an LlmCall event on the namespace's
``ops.llm-calls`` topic; this benchmark reads them back and divides by the
simulation's posts and observations. Reference: one ``fast`` call per event,
the importance score every memory needs.
"""

from __future__ import annotations

import uuid
from collections import Counter

from bench.b3_llm_bound import llm_env
from bench.common import ROOT, Ctx, figure, publish, start_workers, stop_workers, wait_drained, wait_members
from connectors import synthetic
from streams.llm.devserver import spawn
from streams.kafka import read_to_end
from streams.serde import default_serde
from streams.topics import LLM_CALLS, topic_name

NAME = "B7"
TITLE = "LLM calls and tokens per 1,000 events, per role"
CASE = ROOT / "eval" / "cases" / "uk_sugar_levy_2018"


def read_calls(settings, topic: str) -> tuple[Counter, Counter, Counter]:
    """Calls and tokens by role, and calls by role/task."""
    serde = default_serde()
    calls, tokens, tasks = Counter(), Counter(), Counter()
    # The namespace's topic holds this run's calls only (a batch's embedding
    # call carries no simulation id).
    for m in read_to_end(settings, topic):
        _, r = serde.decode(m.value())
        calls[r["role"]] += 1
        tokens[r["role"]] += r["prompt_tokens"] + r["completion_tokens"]
        tasks[f"{r['role']}/{r.get('task') or '?'}"] += 1
    return calls, tokens, tasks


def run(ctx: Ctx) -> dict:
    agents, rounds = (40, 6) if ctx.quick else (150, 10)
    sim = f"b7-{uuid.uuid4().hex[:8]}"
    run_ = synthetic.generate(CASE, sim_id=sim, seed=3, agents=agents, rounds=rounds)
    events = sum(1 for e in run_.events if e.type_name in ("Post", "Observation"))
    with spawn(5.0, 256) as (url, stats, _reset):
        w = start_workers(ctx, "all", prefix="b7", env=llm_env(url, 64))
        try:
            wait_members(ctx.settings, w.group_id, 1)
            publish(ctx.settings, run_.events)
            wait_drained(ctx, w, timeout=600)
        finally:
            stop_workers(ctx, w)
        server = stats()
    calls, tokens, tasks = read_calls(ctx.settings, topic_name(LLM_CALLS, w.settings.namespace))
    figures = {}
    per_event_ref = "1 fast call per event (importance alone)"
    for role in sorted(calls):
        figures[f"{role}_calls_per_1000"] = figure([calls[role] * 1000 / events], unit="calls", reference=per_event_ref,
                                                   reference_value=1000.0)
        figures[f"{role}_tokens_per_1000"] = figure([tokens[role] * 1000 / events], unit="tokens", digits=0)
    figures["all_calls_per_1000"] = figure([sum(calls.values()) * 1000 / events], unit="calls",
                                           reference=per_event_ref, reference_value=1000.0)
    figures["all_tokens_per_1000"] = figure([sum(tokens.values()) * 1000 / events], unit="tokens", digits=0)
    # What reached the server: calls sharing a request (batched completions) are one request.
    figures["http_requests_per_1000"] = figure([server["total"] * 1000 / events], unit="requests",
                                               reference="all calls", reference_value=sum(calls.values()) * 1000 / events)
    ctx.log(f"  B7 {events} events: calls {dict(calls)}, tokens {dict(tokens)}, by task {dict(tasks)}")
    return {"title": TITLE, "calls_by_task_per_1000": {k: round(v * 1000 / events, 1) for k, v in sorted(tasks.items())},
            "settings": {"agents": agents, "rounds": rounds, "events": events, "case": CASE.name,
                                         "server_latency_ms": 5.0, "max_concurrency": 64,
                                         "server_requests": server["requests"],
                                         "token_counts": "dev server estimates (len/4), not a tokenizer"},
            "figures": figures}
