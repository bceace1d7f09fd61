"""Issued keys as the API last read them, for a few seconds.

Without it every request would read the ``api_keys`` table; with it a
revoke (or a new key) is seen within ``ttl_s`` (``MURMUR_API_KEY_CACHE_S``).
Unknown ids are kept too, so a client retrying a wrong key does not read
the table each time. Used from the event loop only, so it needs no lock.
"""

from __future__ import annotations

import time
from typing import Awaitable, Callable

from api.keys import ApiKey

MAX_ENTRIES = 10_000  # ids are client-chosen: bound the memory a flood of made-up ones can take


class KeyCache:
    def __init__(self, load: Callable[[str], Awaitable[ApiKey | None]], *, ttl_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._load = load
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[str, tuple[float, ApiKey | None]] = {}

    async def get(self, key_id: str) -> ApiKey | None:
        now = self._clock()
        hit = self._entries.get(key_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        key = await self._load(key_id)
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[key_id] = (now + self.ttl_s, key)
        return key
