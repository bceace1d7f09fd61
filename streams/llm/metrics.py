"""Prometheus metrics of LLM and embedding calls (module-level, one registry)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from prometheus_client import Counter, Histogram

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
