"""HTTP plumbing shared by the chat client, the prompt batcher and the vLLM embedder.

One aiohttp session per base URL (roles on the same server share it), one
semaphore bounding requests in flight across all of them (a batched
request holds one slot, whatever its number of prompts), and one
retry/fallback policy per call:

* per role: 1 attempt + up to ``max_retries`` retries on 429, 5xx, timeouts,
  transport errors and invalid output, sleeping exponential backoff with
  seeded jitter, never less than the server's ``Retry-After``;
* a non-retryable failure (other 4xx, wrong embedding shape) or exhausted
  retries move on to the next role of ``settings.llm.fallback[role]``;
* when the chain is exhausted and every attempt failed for an outage, the
  chain is tried again after a short pause until ``outage_wait_s`` have
  passed since the first attempt (outage.py);
* then, or at once for any other failure, :class:`LlmUnavailable`.

Each call emits one LlmCall record (see records.py).

aiohttp, not httpx: the client's own CPU per request bounds how close a
worker gets to the server's capacity, and httpx/httpcore/anyio spent 68%
of the client's 1.0-1.4 ms a call here (LiteLLM and the openai SDK moved to
aiohttp for the same reason); a bare aiohttp request costs about 0.3 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import random
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar

import aiohttp
import orjson

from . import metrics
from .breaker import CIRCUIT_OPEN, Breaker
from .outage import OutageWait, probe_cooldown_cap
from .records import CallRecord, LlmUnavailable, OnCall, emit, make_record

T = TypeVar("T")
Usage = dict[str, Any]
# send(role_settings, retry_index) -> (value, usage); it takes its own
# request slot (HttpCaller.slot), so a batched call does not hold one alone.
Send = Callable[[Any, int], Awaitable[tuple[T, Usage]]]


class AttemptFailed(Exception):
    """One attempt failed; ``reason`` is the metrics label."""

    def __init__(self, reason: str, message: str, *, retryable: bool = True,
                 retry_after: float | None = None, usage: Usage | None = None, status: int | None = None):
        super().__init__(message)
        self.reason = reason
        self.status = status
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


def check_status(status: int, text: str, retry_after: str | None) -> None:
    """AttemptFailed for a non-200 reply."""
    if status == 200:
        return
    after = parse_retry_after(retry_after)
    detail = text[:200]
    if status == 429:
        raise AttemptFailed("http_429", f"429: {detail}", retry_after=after, status=status)
    if status >= 500 or status == 408:
        raise AttemptFailed("http_5xx", f"{status}: {detail}", retry_after=after, status=status)
    # Other 4xx (bad request, unknown model, prompt too long) will not get
    # better by retrying the same server; another role might accept it.
    raise AttemptFailed("http_4xx", f"{status}: {detail}", retryable=False, status=status)


class Endpoint:
    """One server's base URL and its connections (an aiohttp session)."""

    def __init__(self, base_url: str, limit: int, api_key: str = "EMPTY"):
        self.base = base_url.rstrip("/") + "/"
        self.limit = limit
        # vLLM checks the key only when started with --api-key.
        self.headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def session(self) -> aiohttp.ClientSession:
        # A session belongs to the loop it was made in; a client used from
        # a later asyncio.run gets a new one.
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.limit, limit_per_host=self.limit),
                headers=self.headers)
            self._loop = loop
        return self._session

    async def post(self, path: str, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """POST and return the decoded reply, mapping every failure to AttemptFailed."""
        try:
            async with self.session().post(self.base + path, data=orjson.dumps(body),
                                           timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
                status, raw, retry_after = resp.status, await resp.read(), resp.headers.get("Retry-After")
        except asyncio.TimeoutError as exc:
            raise AttemptFailed("timeout", f"timeout after {timeout_s}s: {exc!r}") from exc
        except aiohttp.ClientError as exc:
            raise AttemptFailed("connection", f"transport error: {exc!r}") from exc
        check_status(status, raw.decode("utf-8", "replace"), retry_after)
        try:
            reply = orjson.loads(raw)
        except ValueError as exc:
            raise AttemptFailed("invalid_reply", f"reply is not JSON: {exc}") from exc
        if not isinstance(reply, dict):
            raise AttemptFailed("invalid_reply", "reply is not a JSON object")
        return reply

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed and self._loop is asyncio.get_running_loop():
            await self._session.close()
        self._session = None


@dataclass
class _Tally:
    """What a call's attempts add up to, across its passes over the chain."""

    model: str  # the last one tried
    attempts: int = 0  # requests made (a breaker's refusal is none)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    started: float | None = None  # perf_counter at the first attempt: the record's latency
    first_attempt: float | None = None  # monotonic, for the outage wait (outage.py)
    last: AttemptFailed | None = None

    def add(self, usage: Usage) -> None:
        self.prompt_tokens += int(usage.get("prompt_tokens") or 0)
        self.completion_tokens += int(usage.get("completion_tokens") or 0)


class HttpCaller:
    def __init__(self, llm: Any, on_call: OnCall | None = None, *, max_retry_after_s: float = 60.0):
        self.llm = llm
        self.on_call = on_call
        self.max_retry_after_s = max_retry_after_s
        self.semaphore = asyncio.Semaphore(llm.max_concurrency)
        self._rng = random.Random(llm.seed)  # seeded jitter: reproducible schedules
        self._endpoints: dict[tuple[str, str], Endpoint] = {}
        self._breakers: dict[tuple[str, str], Breaker] = {}
        self._chains: dict[str, list[str]] = {}
        self.outage = OutageWait(llm.outage_wait_s)

    def breaker(self, cfg: Any) -> Breaker | None:
        """The breaker of a role's server and model (a server may fail one
        model and serve the others)."""
        if not self.llm.breaker_failures:
            return None
        found = self._breakers.get((cfg.url, cfg.model))
        if found is None:
            found = self._breakers[(cfg.url, cfg.model)] = Breaker(
                self.llm.breaker_failures, self.llm.breaker_cooldown_s,
                probe_cooldown_cap(self.llm.breaker_max_cooldown_s, self.llm.breaker_cooldown_s,
                                   self.llm.outage_wait_s),
                self.llm.breaker_quiet_s)
        return found

    def endpoint(self, base_url: str, api_key: str = "EMPTY") -> Endpoint:
        found = self._endpoints.get((base_url, api_key))
        if found is None:
            found = self._endpoints[(base_url, api_key)] = Endpoint(base_url, self.llm.max_concurrency, api_key)
        return found

    @contextlib.asynccontextmanager
    async def slot(self, cfg: Any) -> AsyncIterator[Endpoint]:
        """One request in flight to the role's server (of max_concurrency).
        The breaker is asked once the slot is free: calls queued behind a
        failing request learn of the outage without trying."""
        async with self.semaphore:
            breaker = self.breaker(cfg)
            if breaker is not None and not breaker.allows(time.monotonic()):
                raise AttemptFailed(CIRCUIT_OPEN, f"{cfg.url} ({cfg.model}): cut off after repeated outage failures",
                                    retryable=False)
            yield self.endpoint(cfg.url, cfg.api_key)

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
        known = self._chains.get(role)
        if known is not None:
            return known
        seen, out = set(), []
        for r in [role, *self.llm.fallback.get(role, [])]:
            self.role(r)  # a typo in settings.llm.fallback fails loudly
            if r not in seen:
                seen.add(r)
                out.append(r)
        self._chains[role] = out  # settings do not change under a client
        return out

    async def run(self, role: str, send: Send, *, cache_key: str, sim_id: str = "",
                  round: int = 0, task: str = "", answer_of: Callable[[T], tuple[str, str]] | None = None,
                  ) -> tuple[T, CallRecord]:
        """``answer_of(value)`` -> (fingerprint, answer JSON) to record for
        the journal (streams/llm/journal.py); embeddings have none."""
        chain = self.chain(role)
        tally = _Tally(model=self.role(role).model)
        waited = False
        try:
            while True:  # one pass over the chain; again only while an outage is waited out
                reasons: list[str] = []
                answered = await self._pass(chain, send, tally, reasons)
                if answered is not None:
                    value, position = answered
                    self.outage.succeeded(role)
                    status = "fallback_ok" if position else ("ok" if tally.attempts == 1 else "retried_ok")
                    record = self._record(role, status, cache_key, tally, sim_id, round, None, task)
                    if answer_of is not None:
                        record["fingerprint"], record["answer"] = answer_of(value)
                    if waited:
                        metrics.observe_outage_wait(role, "recovered")
                    await emit(record, self.on_call)
                    return value, record
                pause = self.outage.pause(role, first_attempt=tally.first_attempt or time.monotonic(),
                                          now=time.monotonic(), reasons=reasons)
                if pause is None:
                    break
                if not waited:
                    waited = True
                    metrics.outage_waiting(role, +1)
                await asyncio.sleep(pause)
        finally:
            if waited:  # answered, given up, or cancelled (a worker stopping) mid-wait
                metrics.outage_waiting(role, -1)
        last = tally.last
        error = f"{last.reason}: {last}" if last else "no attempt made"
        if waited:
            error += f" (after waiting {time.monotonic() - tally.first_attempt:.1f} s for the outage to end)"
            metrics.observe_outage_wait(role, "gave_up")
        record = self._record(role, "failed", cache_key, tally, sim_id, round, error, task)
        await emit(record, self.on_call)
        raise LlmUnavailable(
            f"role {role!r} and fallbacks {chain[1:]} failed after {tally.attempts} attempts: {error}", record)

    async def _pass(self, chain: list[str], send: Send, tally: "_Tally",
                    reasons: list[str]) -> tuple[Any, int] | None:
        """One pass over the chain: (value, position of the role that gave
        it), or None with every failed attempt's reason in ``reasons``."""
        for position, current in enumerate(chain):
            cfg = self.role(current)
            tally.model = cfg.model
            if position:
                metrics.observe_fallback(chain[position - 1], current)
            breaker = self.breaker(cfg)
            for retry in range(self.llm.max_retries + 1):
                tally.attempts += 1
                try:
                    # The slot is taken per attempt (inside send), not across
                    # backoff sleeps, so a retrying call does not block others.
                    tally.started = tally.started or time.perf_counter()
                    tally.first_attempt = tally.first_attempt or time.monotonic()
                    value, usage = await send(cfg, retry)
                except AttemptFailed as exc:
                    tally.last = exc
                    reasons.append(exc.reason)
                    if exc.reason == CIRCUIT_OPEN:
                        tally.attempts -= 1  # no request was made
                    elif breaker is not None and breaker.record(time.monotonic(), ok=False, reason=exc.reason):
                        metrics.observe_breaker_opened(current)
                    tally.add(exc.usage)
                    metrics.observe_failure(current, exc.reason)
                    if not exc.retryable or retry == self.llm.max_retries:
                        break
                    await asyncio.sleep(self.backoff(retry, exc.retry_after))
                    continue
                if breaker is not None:
                    breaker.record(time.monotonic(), ok=True)
                tally.add(usage)  # tokens of failed attempts are billed too, so they are summed
                return value, position
        return None

    def _record(self, role, status, cache_key, tally, sim_id, round, error, task):
        return make_record(
            backend="vllm", role=role, model=tally.model, status=status, attempts=tally.attempts,
            cache_key=cache_key, prompt_tokens=tally.prompt_tokens, completion_tokens=tally.completion_tokens,
            latency_ms=(time.perf_counter() - tally.started) * 1000.0 if tally.started else 0.0,
            sim_id=sim_id, round=round, error=error, task=task,
        )

    async def aclose(self) -> None:
        endpoints, self._endpoints = self._endpoints, {}
        await asyncio.gather(*(e.aclose() for e in endpoints.values()))
