"""The soak's decisions, without a service: when each fault comes, and
whether a process's memory grew while it lived.

Faults come in rotation so that every kind meets the pipeline in a different
state (a backlog left by the previous fault, a fresh worker, a warm one); the
worker's own faults are spaced apart by the others, so it lives for several
intervals and its memory over a long life can be judged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Worker faults alternate with the services' so the worker lives three intervals at a time.
KINDS = ("worker_sigkill", "broker_restart", "cassandra_away", "worker_sigterm", "llm_away", "publisher_kill")


def schedule(duration_s: float, every_s: float, kinds: tuple[str, ...] = KINDS) -> list[tuple[float, str]]:
    """(second, kind) of each fault: the first half an interval in, then one
    per interval, kinds in rotation, none in the last half interval (the run
    must end with the pipeline's recovery, not with a fault)."""
    if every_s <= 0 or duration_s <= 0:
        raise ValueError("duration and interval must be positive")
    out, t, i = [], every_s / 2, 0
    while t <= duration_s - every_s / 2:
        out.append((round(t, 3), kinds[i % len(kinds)]))
        t += every_s
        i += 1
    return out


def interval_for(duration_s: float, *, rounds: int = 2, kinds: tuple[str, ...] = KINDS) -> float:
    """The interval that fits ``rounds`` of every kind into the run."""
    return duration_s / (rounds * len(kinds))


@dataclass(frozen=True)
class Trend:
    """A process's resident memory over one life (between two restarts)."""
    pid: int
    minutes: float  # the life's length, from the first sample after warm-up
    samples: int
    first_mb: float  # median of the first fifth of the samples
    last_mb: float  # median of the last fifth
    slope_mb_per_min: float  # least squares over the whole life after warm-up
    growth_pct: float  # (last - first) / first

    def as_dict(self) -> dict:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in self.__dict__.items()}


def trends(samples: list[dict], *, warmup_s: float = 60.0, min_minutes: float = 2.0) -> list[Trend]:
    """One Trend per process life long enough to judge. ``samples`` carry
    ``t`` (seconds), ``pid`` and ``rss_mb`` (None while it was down). The
    first ``warmup_s`` of a life are left out: a new worker loads its state
    and its libraries then, which is not growth."""
    lives: dict[int, list[tuple[float, float]]] = {}
    for s in samples:
        if s.get("pid") and s.get("rss_mb") is not None:
            lives.setdefault(s["pid"], []).append((s["t"], s["rss_mb"]))
    out = []
    for pid, points in lives.items():
        start = points[0][0] + warmup_s
        kept = [(t, mb) for t, mb in points if t >= start]
        if len(kept) < 5 or (kept[-1][0] - kept[0][0]) / 60 < min_minutes:
            continue
        t = np.array([p[0] for p in kept]) / 60.0
        mb = np.array([p[1] for p in kept])
        slope = float(np.polyfit(t, mb, 1)[0])
        fifth = max(1, len(kept) // 5)
        first, last = float(np.median(mb[:fifth])), float(np.median(mb[-fifth:]))
        out.append(Trend(pid, float(t[-1] - t[0]), len(kept), first, last, slope,
                         100.0 * (last - first) / first if first else 0.0))
    return out


def flat(trend: Trend, *, horizon_min: float = 30.0, tolerance_pct: float = 10.0) -> bool:
    """No growth trend: at the life's measured slope, ``horizon_min`` minutes
    would add less than ``tolerance_pct`` of what the process holds."""
    return trend.slope_mb_per_min * horizon_min < trend.first_mb * tolerance_pct / 100.0


@dataclass(frozen=True)
class RunTrend:
    """A process's resident memory over the whole run, across its lives:
    what a restart hides from :func:`trends` (state read back at every start
    that grows with the run shows as each life starting higher)."""
    minutes: float
    samples: int
    slope_mb_per_min: float  # least squares over every life's samples after its warm-up
    settled_mb: tuple[float, ...]  # per life, in order: the median of its last fifth

    def as_dict(self) -> dict:
        return {"minutes": round(self.minutes, 3), "samples": self.samples,
                "slope_mb_per_min": round(self.slope_mb_per_min, 3),
                "settled_mb": [round(v, 1) for v in self.settled_mb]}


def run_trend(samples: list[dict], *, warmup_s: float = 60.0, min_minutes: float = 2.0) -> RunTrend | None:
    """One line through every life's samples (each life's first ``warmup_s``
    left out, and lives shorter than ``min_minutes`` after it, as
    :func:`trends` leaves them out: such a life never settled), or None with
    fewer than 5 such samples."""
    lives: dict[int, list[tuple[float, float]]] = {}
    for s in samples:
        if s.get("pid") and s.get("rss_mb") is not None:
            lives.setdefault(s["pid"], []).append((s["t"], s["rss_mb"]))
    kept, settled = [], []
    for points in sorted(lives.values()):  # by start time
        life = [(t, mb) for t, mb in points if t >= points[0][0] + warmup_s]
        if life and (life[-1][0] - life[0][0]) / 60 >= min_minutes:
            kept += life
            settled.append(float(np.median([mb for _, mb in life[-max(1, len(life) // 5):]])))
    if len(kept) < 5:
        return None
    t = np.array([p[0] for p in kept]) / 60.0
    mb = np.array([p[1] for p in kept])
    return RunTrend(float(t[-1] - t[0]), len(kept), float(np.polyfit(t, mb, 1)[0]), tuple(settled))


def run_flat(trend: RunTrend, *, tolerance_pct: float = 10.0) -> bool:
    """No growth over the run: the line adds less than ``tolerance_pct`` of
    the first life's settled level over the run's length."""
    return trend.slope_mb_per_min * trend.minutes < trend.settled_mb[0] * tolerance_pct / 100.0
