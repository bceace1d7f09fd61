"""Wiring of issued keys and their limits into the app: the key cache and
the throttle an app holds, and the charge an expensive endpoint makes."""

from __future__ import annotations

from fastapi import HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.key_cache import KeyCache
from api.keys import KeyTable, UsageTable
from api.throttle import Throttle, headers, refusal
from api.models import Problem

# The responses of an endpoint that charges (OpenAPI).
LIMITED = {429: {"model": Problem, "description": "The API key's rate limit or quota is used up (Retry-After says "
                                                   "when to retry)",
                 "headers": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}}}


def key_checks(settings, store) -> tuple[KeyCache, Throttle]:
    keys, usage = KeyTable(store), UsageTable(store)

    async def load(key_id: str):
        return await run_in_threadpool(keys.get, key_id)

    async def add_use(key_id: str, window_start: int, n: int) -> int:
        return await run_in_threadpool(usage.add, key_id, window_start, n)

    return (KeyCache(load, ttl_s=settings.api_key_cache_s),
            Throttle(rate=settings.api_key_rate, quota=settings.api_key_quota, add_use=add_use))


async def charge(request: Request, response: Response, cost: int = 1) -> None:
    """Counts the request against its key's limits: RateLimit headers on the
    answer, or 429 when a limit is used up. Not limited: the operator's
    key, and every request when no key is required."""
    caller = getattr(request.state, "caller", None)
    if caller is None or caller.key is None:
        return
    decision = await request.app.state.throttle.charge(caller.key, cost)
    if decision is None:
        return
    if not decision.allowed:
        raise HTTPException(429, refusal(decision, caller.key.key_id), headers=headers(decision))
    response.headers.update(headers(decision))
