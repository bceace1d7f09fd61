"""HTTP plumbing shared by the chat client and the vLLM embedder.

One connection pool per base URL (roles on the same server share it, see
ShardedPool), one semaphore bounding requests in flight across all of
them, and one retry/fallback policy:

* per role: 1 attempt + up to ``max_retries`` retries on 429, 5xx, timeouts,
  transport errors and invalid output, sleeping exponential backoff with
  seeded jitter, never less than the server's ``Retry-After``;
* a non-retryable failure (other 4xx, wrong embedding shape) or exhausted
  retries move on to the next role of ``settings.llm.fallback[role]``;
* when the chain is exhausted, :class:`LlmUnavailable`.

Each call emits one LlmCall record (see records.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import math
import random
import time
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar

import httpx

from . import metrics
from .records import CallRecord, LlmUnavailable, OnCall, emit, make_record

T = TypeVar("T")
Usage = dict[str, Any]
# send(http, role_settings, retry_index) -> (value, usage)
Send = Callable[[httpx.AsyncClient, Any, int], Awaitable[tuple[T, Usage]]]


class AttemptFailed(Exception):
    """One attempt failed; ``reason`` is the metrics label."""

    def __init__(self, reason: str, message: str, *, retryable: bool = True,
                 retry_after: float | None = None, usage: Usage | None = None):
        super().__init__(message)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        self.usage = usage or {}


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


async def post_json(http: httpx.AsyncClient, path: str, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """POST and return the decoded reply, mapping every failure to AttemptFailed."""
    try:
        resp = await http.post(path, json=body, timeout=timeout_s)
    except httpx.TimeoutException as exc:
        raise AttemptFailed("timeout", f"timeout after {timeout_s}s: {exc!r}") from exc
    except httpx.TransportError as exc:
        raise AttemptFailed("connection", f"transport error: {exc!r}") from exc
    status = resp.status_code
    if status != 200:
        retry_after = parse_retry_after(resp.headers.get("retry-after"))
        detail = resp.text[:200]
        if status == 429:
            raise AttemptFailed("http_429", f"429: {detail}", retry_after=retry_after)
        if status >= 500 or status == 408:
            raise AttemptFailed("http_5xx", f"{status}: {detail}", retry_after=retry_after)
        # Other 4xx (bad request, unknown model, prompt too long) will not get
        # better by retrying the same server; another role might accept it.
        raise AttemptFailed("http_4xx", f"{status}: {detail}", retryable=False)
    try:
        reply = resp.json()
    except json.JSONDecodeError as exc:
        raise AttemptFailed("invalid_reply", f"reply is not JSON: {exc}") from exc
    if not isinstance(reply, dict):
        raise AttemptFailed("invalid_reply", "reply is not a JSON object")
    return reply


class ShardedPool:
    """Connections to one base URL, ``concurrency`` in all, in shards of <= 8.

    One ``httpx.AsyncClient`` would do, but httpcore 1.0.9 rescans every
    pooled connection several times per request (quadratic bookkeeping): at
    64 connections the client spent ~5 ms of CPU a request and throughput
    fell below that of 8 connections. Small shards keep each scan short; a
    request takes the least-loaded shard, so with the caller's semaphore no
    shard is asked for more connections than it has.
    """

    SHARD_SIZE = 8

    def __init__(self, base_url: str, concurrency: int, api_key: str = "EMPTY"):
        shards = max(1, math.ceil(concurrency / self.SHARD_SIZE))
        per_shard = math.ceil(concurrency / shards)
        limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
        self.clients = [
            httpx.AsyncClient(
                base_url=base_url.rstrip("/") + "/",
                limits=limits,
                headers={"Authorization": f"Bearer {api_key}"},  # vLLM checks it only when started with --api-key
            )
            for _ in range(shards)
        ]
        self.load = [0] * shards

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[httpx.AsyncClient]:
        i = min(range(len(self.load)), key=self.load.__getitem__)
        self.load[i] += 1
        try:
            yield self.clients[i]
        finally:
            self.load[i] -= 1

    async def aclose(self) -> None:
        await asyncio.gather(*(c.aclose() for c in self.clients))


class HttpCaller:
    def __init__(self, llm: Any, on_call: OnCall | None = None, *, max_retry_after_s: float = 60.0):
        self.llm = llm
        self.on_call = on_call
        self.max_retry_after_s = max_retry_after_s
        self.semaphore = asyncio.Semaphore(llm.max_concurrency)
        self._rng = random.Random(llm.seed)  # seeded jitter: reproducible schedules
        self._pools: dict[tuple[str, str], ShardedPool] = {}

    def pool(self, base_url: str, api_key: str = "EMPTY") -> "ShardedPool":
        pool = self._pools.get((base_url, api_key))
        if pool is None:
            pool = self._pools[(base_url, api_key)] = ShardedPool(base_url, self.llm.max_concurrency, api_key)
        return pool

    def backoff(self, retry_index: int, retry_after: float | None) -> float:
        """Equal-jitter exponential backoff, at least the server's Retry-After."""
        full = self.llm.backoff_base_s * (2 ** retry_index)
        delay = full / 2 + self._rng.uniform(0, full / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after_s))
        return delay

    def role(self, name: str) -> Any:
        cfg = getattr(self.llm, name, None)
        if not hasattr(cfg, "url") or not hasattr(cfg, "model"):
            raise ValueError(f"unknown role {name!r}")
        return cfg

    def chain(self, role: str) -> list[str]:
        seen, out = set(), []
        for r in [role, *self.llm.fallback.get(role, [])]:
            self.role(r)  # a typo in settings.llm.fallback fails loudly
            if r not in seen:
                seen.add(r)
                out.append(r)
        return out

    async def run(self, role: str, send: Send, *, cache_key: str, sim_id: str = "",
                  round: int = 0, task: str = "") -> tuple[T, CallRecord]:
        # Latency runs from the first attempt's start, after waiting for a
        # concurrency slot: local queueing under asyncio.gather is the
        # caller's choice, not the model's speed. Retries and backoff count.
        started: float | None = None
        attempts, prompt_tokens, completion_tokens = 0, 0, 0
        last: AttemptFailed | None = None
        chain = self.chain(role)
        model = self.role(role).model
        for position, current in enumerate(chain):
            cfg = self.role(current)
            model = cfg.model
            if position:
                metrics.observe_fallback(chain[position - 1], current)
            for retry in range(self.llm.max_retries + 1):
                attempts += 1
                try:
                    # Held per attempt, not across backoff sleeps, so a
                    # retrying call does not block others from the server.
                    async with self.semaphore, self.pool(cfg.url, cfg.api_key).lease() as http:
                        started = started or time.perf_counter()
                        value, usage = await send(http, cfg, retry)
                except AttemptFailed as exc:
                    last = exc
                    prompt_tokens += int(exc.usage.get("prompt_tokens") or 0)
                    completion_tokens += int(exc.usage.get("completion_tokens") or 0)
                    metrics.observe_failure(current, exc.reason)
                    if not exc.retryable or retry == self.llm.max_retries:
                        break
                    await asyncio.sleep(self.backoff(retry, exc.retry_after))
                    continue
                # Tokens of failed attempts are billed too, so they are summed.
                prompt_tokens += int(usage.get("prompt_tokens") or 0)
                completion_tokens += int(usage.get("completion_tokens") or 0)
                status = "fallback_ok" if position else ("ok" if attempts == 1 else "retried_ok")
                record = self._record(role, model, status, attempts, cache_key, prompt_tokens,
                                      completion_tokens, started, sim_id, round, None, task)
                await emit(record, self.on_call)
                return value, record
        error = f"{last.reason}: {last}" if last else "no attempt made"
        record = self._record(role, model, "failed", attempts, cache_key, prompt_tokens,
                              completion_tokens, started, sim_id, round, error, task)
        await emit(record, self.on_call)
        raise LlmUnavailable(f"role {role!r} and fallbacks {chain[1:]} failed after {attempts} attempts: {error}",
                             record)

    def _record(self, role, model, status, attempts, cache_key, pt, ct, started, sim_id, round, error, task):
        return make_record(
            backend="vllm", role=role, model=model, status=status, attempts=attempts, cache_key=cache_key,
            prompt_tokens=pt, completion_tokens=ct,
            latency_ms=(time.perf_counter() - started) * 1000.0 if started else 0.0,
            sim_id=sim_id, round=round, error=error, task=task,
        )

    async def aclose(self) -> None:
        pools, self._pools = self._pools, {}
        await asyncio.gather(*(p.aclose() for p in pools.values()))
