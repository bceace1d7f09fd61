"""The result of one LLM call and the LlmCall record it produces.

Every call, whatever the backend, ends in exactly one record handed to the
``on_call`` callback (the processor publishes it to Kafka) and counted in the
Prometheus metrics, so cost and failure rates are measurable online and
offline alike.
"""

from __future__ import annotations

import hashlib
import itertools
import inspect
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Union

from . import metrics

log = logging.getLogger(__name__)

# A record is a plain dict so it serialises straight to Avro/JSON.
CallRecord = dict[str, Any]
OnCall = Callable[[CallRecord], Union[None, Awaitable[None]]]

RECORD_FIELDS = (
    "event_id", "sim_id", "round", "ts", "role", "model", "backend",
    "prompt_tokens", "completion_tokens", "latency_ms", "status",
    "attempts", "cache_key", "task", "fingerprint", "answer", "error",
)
STATUSES = ("ok", "retried_ok", "fallback_ok", "failed")


class LlmUnavailable(RuntimeError):
    """Every attempt on a role and on its whole fallback chain failed.

    Callers catch this and apply their own documented fallback (for example
    importance 5); the failed LlmCall record has already been emitted.
    """

    def __init__(self, message: str, record: CallRecord | None = None):
        super().__init__(message)
        self.record = record


@dataclass(frozen=True)
class LlmResult:
    """A validated structured answer plus who made it and at what cost.

    ``data`` is exactly the schema-valid JSON; provenance lives beside it so
    the validated object is never polluted. ``result["_backend"]`` works as a
    shorthand, every other key reads ``data``.
    """

    data: dict[str, Any]
    backend: str
    role: str
    model: str
    status: str
    attempts: int
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    cache_key: str
    event_id: str
    record: CallRecord = field(repr=False, compare=False, default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        if key == "_backend":
            return self.backend
        return self.data[key]

    def as_dict(self) -> dict[str, Any]:
        """The data with provenance keys added, for logging or events."""
        return {**self.data, "_backend": self.backend, "_model": self.model}


_PROCESS_NONCE = uuid.uuid4().hex
_calls = itertools.count()


def make_event_id(*, backend: str, cache_key: str, role: str, status: str, attempts: int) -> str:
    """sha256 of what identifies the call's outcome.

    The deterministic backend gives the same id for the same call on every
    replay, so a sink can de-duplicate. A real model call is a new cost
    each time, so vLLM ids also mix in a random nonce.
    """
    parts = [backend, cache_key, role, status, str(attempts)]
    if backend != "deterministic":
        # Unique per call: a random nonce, the process and a counter (a
        # uuid4 per call cost a system call each).
        parts.append(f"{_PROCESS_NONCE}-{os.getpid()}-{next(_calls)}")  # pid: a fork shares the nonce
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def make_record(
    *,
    backend: str,
    role: str,
    model: str,
    status: str,
    attempts: int,
    cache_key: str,
    prompt_tokens: int,
    completion_tokens: int,
    latency_ms: float,
    sim_id: str = "",
    round: int = 0,
    error: str | None = None,
    task: str = "",
    fingerprint: str = "",
    answer: str | None = None,
) -> CallRecord:
    return {
        "event_id": make_event_id(
            backend=backend, cache_key=cache_key, role=role, status=status, attempts=attempts
        ),
        "sim_id": sim_id,
        "round": int(round),
        "ts": int(time.time() * 1000),
        "role": role,
        "model": model,
        "backend": backend,
        "prompt_tokens": int(prompt_tokens),
        "completion_tokens": int(completion_tokens),
        "latency_ms": float(latency_ms),
        "status": status,
        "attempts": int(attempts),
        "cache_key": cache_key,
        "task": task,
        "fingerprint": fingerprint,
        "answer": answer,
        "error": error,
    }


async def emit(record: CallRecord, on_call: OnCall | None) -> None:
    """Count the record in the metrics and hand it to the callback.

    A failing callback must not turn a good answer into a failure, so its
    exception is logged, not raised.
    """
    metrics.observe_call(record)
    if on_call is None:
        return
    try:
        out = on_call(record)
        if inspect.isawaitable(out):
            await out
    except Exception:  # noqa: BLE001 - see docstring
        log.exception("on_call callback failed for LlmCall %s", record["event_id"])


def estimate_tokens(*texts: str) -> int:
    """Rough token count (4 characters a token) for offline cost figures."""
    return sum(len(t) for t in texts) // 4
