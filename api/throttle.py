"""Rate limits and quotas of issued keys on the expensive endpoints (those
that embed a query and search vectors: retrieve, context, batch context).

- A rate ("10/second") counts requests in a moving window, in this API
  process's memory (the `limits` library): N replicas let a key through at
  up to N times its rate. It guards against bursts, so a batch request
  counts once.
- A quota ("10000/day") counts agents served in a fixed window aligned to
  the epoch (a day quota resets at 00:00 UTC), in Cassandra counters shared
  by the replicas. A batch request of N agents counts N: it embeds N
  queries and runs N searches, and the quota is about that work; counting
  it once would let batching escape the quota.

A key's own rate/quota wins over the API's defaults (``MURMUR_API_KEY_RATE``,
``MURMUR_API_KEY_QUOTA``); "none" turns one off for that key. The
operator's key, and requests when no key is required, are not limited.
Answers carry ``RateLimit-Limit``/``-Remaining``/``-Reset`` (seconds) of the
limit nearest to running out; a refusal is 429 with ``Retry-After``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from api.keys import UNLIMITED, ApiKey


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int  # seconds until the window has room again
    window_s: int
    what: str  # "rate" or "quota"
    cost: int = 1


def limit_of(own: str | None, default: str | None) -> RateLimitItem | None:
    """The limit that applies to a key: its own, else the default; None: none."""
    if own == UNLIMITED:
        return None
    text = own or default
    return parse(text) if text else None


def window_of(item: RateLimitItem, now: float) -> tuple[int, int]:
    """The fixed window (start, end; epoch seconds) that ``now`` falls in."""
    period = item.get_expiry()
    start = int(now // period) * period
    return start, start + period


def quota_decision(item: RateLimitItem, used: int, cost: int, now: float) -> Decision:
    """``used``: the window's use with this request's ``cost`` added. Over
    the quota, the request is refused and its cost given back."""
    _, end = window_of(item, now)
    allowed = used <= item.amount
    left = item.amount - (used if allowed else used - cost)
    return Decision(allowed, item.amount, max(0, left), max(1, math.ceil(end - now)), item.get_expiry(), "quota", cost)


def nearest(decisions: list[Decision]) -> Decision | None:
    """The decision to report: a refusal, else the limit with the smallest
    share left."""
    if not decisions:
        return None
    refused = [d for d in decisions if not d.allowed]
    return refused[0] if refused else min(decisions, key=lambda d: d.remaining / d.limit)


def headers(d: Decision) -> dict[str, str]:
    out = {"RateLimit-Limit": str(d.limit), "RateLimit-Remaining": str(d.remaining),
           "RateLimit-Reset": str(d.reset_s), "RateLimit-Policy": f"{d.limit};w={d.window_s}"}
    if not d.allowed:
        out["Retry-After"] = str(d.reset_s)
    return out


def refusal(d: Decision, key_id: str) -> str:
    per = f"{d.limit} per {d.window_s} s"
    if d.what == "quota" and d.cost > d.limit:
        return f"key {key_id}: this request counts {d.cost} against a quota of {per}, which it can never fit: split it"
    if d.what == "quota":
        return f"key {key_id}: quota of {per} used up ({d.remaining} left, this request counts {d.cost}); " \
               f"it resets in {d.reset_s} s"
    return f"key {key_id}: rate limit of {per} reached; retry in {d.reset_s} s"


class Throttle:
    def __init__(self, *, rate: str | None, quota: str | None,
                 add_use: Callable[[str, int, int], Awaitable[int]],
                 clock: Callable[[], float] = time.time) -> None:
        self.default_rate, self.default_quota = rate, quota
        self._add_use = add_use
        self._clock = clock
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def rate(self, key: ApiKey) -> Decision | None:
        item = limit_of(key.rate, self.default_rate)
        if item is None:
            return None
        allowed = self._limiter.hit(item, key.key_id)
        stats = self._limiter.get_window_stats(item, key.key_id)
        reset = max(1, math.ceil(stats.reset_time - time.time()))  # the library's own clock
        return Decision(allowed, item.amount, stats.remaining, reset, item.get_expiry(), "rate")

    async def quota(self, key: ApiKey, cost: int) -> Decision | None:
        item = limit_of(key.quota, self.default_quota)
        if item is None:
            return None
        now = self._clock()
        start, _ = window_of(item, now)
        used = await self._add_use(key.key_id, start, cost)
        decision = quota_decision(item, used, cost, now)
        if not decision.allowed:
            await self._add_use(key.key_id, start, -cost)
        return decision

    async def charge(self, key: ApiKey, cost: int) -> Decision | None:
        """Counts a request of ``cost`` units; the decision to report (None:
        the key has no limit)."""
        rate = self.rate(key)
        if rate is not None and not rate.allowed:
            return rate
        quota = await self.quota(key, cost)
        return nearest([d for d in (rate, quota) if d is not None])
