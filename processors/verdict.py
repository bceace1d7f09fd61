"""verdict: per simulation, at each round end, where opinion stands.

The simulation's question comes from its Simulation event (same key).
Input is cheap by design: the stance processor did the per-post work keyed
by author and re-keyed its contributions by simulation; round markers are
keyed by simulation too, so both meet on one partition. State per
simulation is a handful of sums per round (weighted valence, weight, count),
each agent's held stance, when each author first counted, flips per round and
the rounds closed so far; which contributions were already applied is kept
in a second table keyed per contribution, so the per-simulation value stays
small however many posts there are.

Topics give no order across them: a contribution may arrive after the
marker of its round. The verdict of every closed round it affects is then
emitted again (same event id, so the read model's row is rewritten), and
once the input is processed every verdict equals the eval replay's.
"""

from __future__ import annotations

import time

import faust

from processors.opinion import LEXICON, verdict_record
from processors.runtime import Incoming, Runtime, with_defaults
from streams.topics import ROUNDS, SIMULATIONS, STANCES, VERDICTS, sim_key

STAGE = "verdict"
TABLES = ('verdict-state', 'verdict-applied')
INPUTS = (STANCES, ROUNDS, SIMULATIONS)


def empty_state() -> dict:
    return {"sums": {}, "authors": {}, "stances": {}, "flips": {}, "closed": {}, "backend": LEXICON, "question": ""}


def load_state(stored: dict | None) -> dict:
    state = with_defaults(stored, empty_state())
    # Older states held one stance per agent (the latest): read it as of round 0.
    state["stances"] = {a: (v if isinstance(v, dict) else {"0": v}) for a, v in state["stances"].items()}
    return state


def stance_as_of(by_round: dict[str, int], round_: int) -> int | None:
    rounds = [int(k) for k in by_round if int(k) <= round_]
    return by_round[str(max(rounds))] if rounds else None


def add(state: dict, s: dict) -> int:
    """Apply one Stance; return the round it changed."""
    r = str(s["round"])
    svw, sw, n = state["sums"].get(r, [0.0, 0.0, 0])
    sign = -1 if s["kind"] == "retract" else 1
    state["sums"][r] = [svw + sign * s["valence"] * s["weight"], sw + sign * s["weight"], n + sign]
    if s["kind"] == "post":
        # Held stance per agent as of each round (kept only where it changes):
        # a verdict re-emitted later for an earlier round must count the
        # stances of that round, not today's, or it depends on arrival order.
        by_round = state["stances"].setdefault(s["agent_id"], {})
        if stance_as_of(by_round, s["round"]) != s["agent_stance"] or r in by_round:
            by_round[r] = s["agent_stance"]
        state["authors"][s["agent_id"]] = min(state["authors"].get(s["agent_id"], s["round"]), s["round"])
        if s["flipped"]:
            state["flips"][r] = state["flips"].get(r, 0) + 1
    if s["backend"]:
        state["backend"] = s["backend"]
    return s["round"]


def verdict_at(state: dict, sim_id: str, round_: int) -> dict:
    rows = [v for r, v in state["sums"].items() if int(r) <= round_]
    return verdict_record(
        sim_id=sim_id, question=state["question"], round_=round_, ts=state["closed"][str(round_)],
        weighted_sum=sum(v[0] for v in rows), weight_sum=sum(v[1] for v in rows), n=sum(v[2] for v in rows),
        authors=sum(1 for first in state["authors"].values() if first <= round_),
        stances=[h for h in (stance_as_of(b, round_) for b in state["stances"].values()) if h is not None], flips=state["flips"].get(str(round_), 0), backend=state["backend"])


def sim_events(state: dict, items: list[Incoming], seen) -> tuple[dict, list[dict]]:
    """One simulation's inputs in order -> verdicts to emit (closed rounds
    whose numbers changed, and rounds just closed)."""
    changed: set[int] = set()
    for inc in items:
        r = inc.record
        if inc.type_name == "Simulation":
            # The question travels on the simulation's own event (published
            # before its actions); verdicts from then on carry it.
            state["question"] = r["question"]
            continue
        if inc.type_name == "RoundMarker":
            if r["kind"] == "round_end":
                state["closed"][str(r["round"])] = max(state["closed"].get(str(r["round"]), 0), r["ts"])
                changed.add(r["round"])
            continue
        if seen(r["event_id"]):
            continue  # redelivered contribution
        changed.add(add(state, r))
    if not changed:
        return state, []
    low = min(changed)
    due = sorted(int(k) for k in state["closed"] if int(k) >= low)
    return state, [verdict_at(state, items[0].record["sim_id"], rnd) for rnd in due]


def register(app: faust.App, rt: Runtime, *, batch_size: int = 2000, within: float = 0.25) -> None:
    table = app.Table(TABLES[0], default=None, partitions=rt.settings.topic_partitions, key_type=bytes)
    applied = app.Table(TABLES[1], default=None, partitions=rt.settings.topic_partitions, key_type=bytes)

    @app.agent(app.topic(*(rt.topic(t) for t in INPUTS)), name=STAGE)
    async def verdict(stream):
        async for events in stream.take_events(batch_size, within=within):
            started = time.perf_counter()
            batch = rt.decode_events(events, expected=("Stance", "RoundMarker", "Simulation"), stage=STAGE)
            groups: dict[bytes, list[Incoming]] = {}
            for inc in batch:
                groups.setdefault(sim_key(inc.record["sim_id"]), []).append(inc)
            new_ids: list[tuple[bytes, Incoming]] = []
            for key, items in groups.items():
                pending = {i.record["event_id"] for i in items if i.type_name == "Stance"}
                batch_seen: set[str] = set()

                def seen(event_id: str, key=key) -> bool:
                    if event_id in batch_seen or applied.get(key + b"/" + event_id.encode()):
                        return True
                    batch_seen.add(event_id)
                    return False

                try:
                    state, verdicts = sim_events(load_state(table.get(key)), items, seen)
                except Exception as exc:  # keep the inputs, move on
                    rt.dead_letter_all(STAGE, items, exc)
                    continue
                for v in verdicts:
                    rt.emit(STAGE, VERDICTS, key, v)
                rt.remember(table, key, state, items[-1])
                by_id = {i.record["event_id"]: i for i in items if i.type_name == "Stance"}
                new_ids += [(key + b"/" + e.encode(), by_id[e]) for e in sorted(batch_seen & pending)]
            await rt.flush()
            rt.commit_state(table)
            for k, inc in new_ids:
                rt.remember(applied, k, True, inc)
            rt.commit_state(applied)
            rt.observe_batch(STAGE, started, batch)
