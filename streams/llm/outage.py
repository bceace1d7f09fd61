"""A server restart costs latency, not degraded memories.

When every attempt of a call's whole chain failed for outage reasons (the
server refused the connection, timed out, answered 5xx or 429, or the
breaker refused the attempt while it is open), the call does not apply its
fallback yet: it pauses and tries the chain again, until
``outage_wait_s`` have passed since its first attempt. A vLLM deploy of
20 s then delays the calls made during it instead of scoring their
memories with the fallback importance and no vector (which ``murmur
rescore`` would have to fix later, and which a replay would not repeat).

A failure that is not an outage (an invalid answer, another 4xx, a wrong
embedding shape) means the server is up and said no: waiting will not
change it, so the fallback applies at once, as it does with
``outage_wait_s`` 0.

The pause is short (``pause_s``, 1 s) rather than timed to the breaker's
probe: while the breaker is open a pass costs no request (every attempt is
refused at once), so the waiting calls poll it cheaply, and the first one
to come after the cooldown is its half-open probe.

An outage longer than the wait costs the wait once per role, not once per
call: after a call of a role gave up at the end of its wait, the role's
later calls fall back at once (the old behaviour, so a long outage does not
stall the pipeline for ``outage_wait_s`` at every call) until one of them
succeeds again.

Pure: the clock is given, so the decisions are tested without a server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from .breaker import CIRCUIT_OPEN, OUTAGE_REASONS

# Failed attempts that say the server is away, not that it answered no.
WAITABLE_REASONS = OUTAGE_REASONS | {CIRCUIT_OPEN}


def all_outage(reasons: Iterable[str]) -> bool:
    """Whether every failed attempt of a pass over the chain was an outage
    (no reasons at all: nothing was tried, so nothing says the server is away)."""
    reasons = list(reasons)
    return bool(reasons) and all(r in WAITABLE_REASONS for r in reasons)


@dataclass
class OutageWait:
    """One client's decisions: does a call whose chain just failed wait and
    try again, and for how long does it pause first."""

    wait_s: float
    pause_s: float = 1.0
    _gave_up: set[str] = field(default_factory=set)  # roles whose wait ran out, with no success since

    def __post_init__(self) -> None:
        if self.wait_s < 0 or self.pause_s <= 0:
            raise ValueError(f"outage wait {self.wait_s!r} must be >= 0 and pause {self.pause_s!r} > 0")

    def pause(self, role: str, *, first_attempt: float, now: float, reasons: Iterable[str]) -> float | None:
        """Seconds to sleep before trying ``role``'s chain again, or None:
        give up now (raise LlmUnavailable; the caller's fallback applies).

        ``reasons``: the failure reasons of every attempt of the pass that
        just ended; ``first_attempt``, ``now``: the call's clock (seconds)."""
        if self.wait_s <= 0 or not all_outage(reasons) or role in self._gave_up:
            return None
        remaining = self.wait_s - (now - first_attempt)
        if remaining <= 0:
            self._gave_up.add(role)
            return None
        return min(self.pause_s, remaining)

    def succeeded(self, role: str) -> None:
        """A call of ``role`` got its answer: the next outage is waited for again."""
        self._gave_up.discard(role)

    def gave_up(self, role: str) -> bool:
        return role in self._gave_up


def probe_cooldown_cap(max_cooldown_s: float, cooldown_s: float, wait_s: float) -> float:
    """The breaker's longest cooldown under an outage wait: a quarter of the
    wait, so its half-open probe comes several times within it. With the
    breaker's own cap only (60 s), its doubling cooldown (5, 10, 20, 40 s)
    would notice a server back after 35 s only once a 60 s wait had run out.
    Never below the first cooldown; no wait, no change."""
    if wait_s <= 0:
        return max_cooldown_s
    return max(cooldown_s, min(max_cooldown_s, wait_s / 4))
