"""Prometheus metrics of LLM and embedding calls (module-level, one registry)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

LLM_CALLS = Counter(
    "murmur_llm_calls_total", "LLM calls by requested role and final status", ["role", "status"]
)
LLM_TOKENS = Counter(
    "murmur_llm_tokens_total", "Tokens billed by role, kind=prompt|completion", ["role", "kind"]
)
LLM_LATENCY = Histogram(
    "murmur_llm_latency_seconds",
    "Wall time of a whole call, retries and fallbacks included",
    ["role"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
LLM_FAILURES = Counter(
    "murmur_llm_failures_total", "Failed attempts by the role tried and the reason", ["role", "reason"]
)
LLM_BREAKER_OPENED = Counter(
    "murmur_llm_breaker_opened_total", "Times a role's server was cut off after repeated outage failures",
    ["role"],
)
# Label values: the requested role (fast, balanced, heavy, embed; chain()
# refuses any other) and the two outcomes below.
LLM_OUTAGE_WAITING = Gauge(
    "murmur_llm_outage_waiting_calls",
    "Calls whose whole chain failed for an outage, waiting for the server to come back (outage_wait_s)", ["role"],
)
LLM_OUTAGE_WAITS = Counter(
    "murmur_llm_outage_waits_total",
    "Calls that waited out an outage, by outcome: recovered (answered) or gave_up (the fallback applied)",
    ["role", "outcome"],
)
EMBED_CACHE_HITS = Counter(
    "murmur_embed_cache_hits_total", "Texts whose embedding came from the process's cache instead of the server",
)
JOURNAL_ANSWERS = Counter(
    "murmur_llm_journal_answers_total",
    "Requests a restarted worker answered from its group's recorded answers instead of the model", ["task"],
)
LLM_FALLBACKS = Counter(
    "murmur_llm_fallbacks_total", "Switches from a failing role to the next", ["from_role", "to_role"]
)


@lru_cache(maxsize=256)
def _children(role: str, status: str) -> tuple:
    # labels() looks its child up under a lock on every call: once per
    # (role, status) is enough, roles and statuses being a handful.
    return (LLM_CALLS.labels(role=role, status=status), LLM_TOKENS.labels(role=role, kind="prompt"),
            LLM_TOKENS.labels(role=role, kind="completion"), LLM_LATENCY.labels(role=role))


def observe_call(record: dict[str, Any]) -> None:
    calls, prompt, completion, latency = _children(record["role"], record["status"])
    calls.inc()
    prompt.inc(record["prompt_tokens"])
    completion.inc(record["completion_tokens"])
    latency.observe(record["latency_ms"] / 1000.0)


def observe_failure(role: str, reason: str) -> None:
    LLM_FAILURES.labels(role=role, reason=reason).inc()


def observe_breaker_opened(role: str) -> None:
    LLM_BREAKER_OPENED.labels(role=role).inc()


def observe_fallback(from_role: str, to_role: str) -> None:
    LLM_FALLBACKS.labels(from_role=from_role, to_role=to_role).inc()


def outage_waiting(role: str, delta: int) -> None:
    LLM_OUTAGE_WAITING.labels(role=role).inc(delta)


def observe_outage_wait(role: str, outcome: str) -> None:
    if outcome not in ("recovered", "gave_up"):
        raise ValueError(f"outage wait outcome {outcome!r} is not recovered or gave_up")
    LLM_OUTAGE_WAITS.labels(role=role, outcome=outcome).inc()
