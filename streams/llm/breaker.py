"""A circuit breaker per LLM server: an outage costs a few calls, not a retry storm.

Without one, every call during an outage makes 1 + ``max_retries`` attempts
with backoff before its fallback applies: thousands of calls, each waiting
seconds, hammering a server that is starting up. After ``failures`` outage
failures in a row (connection refused, timeouts, 5xx, 429) with no success
for ``quiet_s`` the breaker opens (a flaky server that still answers some
requests is not cut off: its failures come back faster than its successes,
so a streak alone would trip it under load): attempts to that server fail at once (the role's fallback chain, then,
after the outage wait of outage.py, the caller's documented fallback, apply) for ``cooldown_s``, doubled at
each reopening up to ``max_cooldown_s``. Then one attempt goes through
(half-open): a success closes the breaker, a failure opens it again.

Pure: the clock is given, so the decisions are tested without a server.
"""

from __future__ import annotations

from dataclasses import dataclass

OUTAGE_REASONS = frozenset({"connection", "timeout", "http_5xx", "http_429"})
CIRCUIT_OPEN = "circuit_open"  # an attempt the open breaker refused: no request was made


@dataclass
class Breaker:
    failures: int = 10
    cooldown_s: float = 5.0
    max_cooldown_s: float = 60.0
    quiet_s: float = 2.0
    _streak: int = 0
    _last_ok: float | None = None  # or, before any success, the first outcome
    _open_until: float | None = None  # None: closed
    _opened: int = 0  # consecutive openings, for the growing cooldown
    _probing: bool = False

    @property
    def state(self) -> str:
        if self._open_until is None:
            return "closed"
        return "half_open" if self._probing else "open"

    def allows(self, now: float) -> bool:
        """Whether an attempt may go to the server now."""
        if self._open_until is None:
            return True
        if now >= self._open_until and not self._probing:
            self._probing = True  # one attempt finds out whether it is back
            return True
        return False

    def record(self, now: float, *, ok: bool, reason: str = "") -> bool:
        """An attempt's outcome; True when this one opened the breaker."""
        if ok:
            self._streak, self._open_until, self._opened, self._probing = 0, None, 0, False
            self._last_ok = now
            return False
        if reason not in OUTAGE_REASONS:
            if self._probing:  # the server answered: it is up, whatever it said
                self._streak, self._open_until, self._opened, self._probing = 0, None, 0, False
            return False
        self._streak += 1
        if self._last_ok is None:
            self._last_ok = now  # a server down from the start: quiet from the first failure on
        quiet = now - self._last_ok >= self.quiet_s
        if self._probing or (self._open_until is None and self._streak >= self.failures and quiet):
            self._opened += 1
            self._open_until = now + min(self.cooldown_s * 2 ** (self._opened - 1), self.max_cooldown_s)
            self._probing = False
            return True
        return False
