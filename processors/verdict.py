"""verdict: per simulation, at each round end, where opinion stands.

The simulation's question comes from its Simulation event (same key).
Input is cheap by design: the stance processor did the per-post work keyed
by author and re-keyed its contributions by simulation; round markers are
keyed by simulation too, so both meet on one partition. State per
simulation is a handful of sums per round (weighted valence, weight, posts
and reflections in the ratio, posts read with and without a stance signal,
posts unreadable, reflections excluded), each agent's held stance by round
(only where it changes), the net change in authors counted per round,
flips per round and the rounds closed so far. Two things grow with every
post and live in tables of their own, so the per-simulation value stays
small however many posts, agents and rounds there are: which contributions
were already applied (keyed per contribution) and each author's posts in
the ratio by round (keyed per author). Kept in the simulation's value, the
latter reached the record size limit at 3,000 agents x 70 rounds (a
1,065,433-byte changelog record) and the worker crashed on every restart.

Topics give no order across them: a contribution may arrive after the
marker of its round. The verdict of every closed round it affects is then
emitted again (same event id, so the read model's row is rewritten), and
once the input is processed every verdict equals a replay's: replays run
these same functions (``processors/batch.py``).
"""

from __future__ import annotations

from typing import MutableMapping

import faust

from processors.opinion import Evidence, verdict_record
from streams import logs
from streams.runtime import Effects, Incoming, Runtime, register_batches, with_defaults
from streams.settings import VerdictSettings
from streams.topics import VERDICTS, agent_key, sim_key
from streams.topology import stage

STAGE = "verdict"
INPUTS, TABLES = stage(STAGE).inputs, stage(STAGE).tables  # declared in streams/topology.py


# Per round: [weighted valence sum, weight sum, posts, reflections, posts read
# with a signal, posts read without one, posts unreadable, reflections
# excluded]; net of retractions.
SUMS = 8
READING_SLOT = {"read": 4, "no-signal": 5, "unreadable": 6, "excluded": 7}


def empty_state() -> dict:
    # author_changes: round -> net change in authors counted (see count_author).
    return {"sums": {}, "author_changes": {}, "stances": {}, "flips": {}, "closed": {}, "models": {}, "question": ""}


def load_state(stored: dict | None) -> dict:
    state = with_defaults(stored, empty_state())
    if isinstance(stored, dict) and "authors" in stored:
        state["authors"] = stored["authors"]
    # Older states held one stance per agent (the latest): read it as of round 0.
    state["stances"] = {a: (v if isinstance(v, dict) else {"0": v}) for a, v in state["stances"].items()}
    # Older sums were [svw, sw, n] (posts and reflections together, all read).
    state["sums"] = {r: list(v) if len(v) == SUMS else [v[0], v[1], v[2], 0, v[2], 0, 0, 0]
                     for r, v in state["sums"].items()}
    if not isinstance(state["models"], dict):
        state["models"] = {}
    # Older states held every author's posts by round (older still: its
    # first round); sim_events moves them to the authors table.
    if "authors" in state:
        state["authors"] = {a: (v if isinstance(v, dict) else {str(v): 1}) for a, v in state["authors"].items()}
    return state


def transitions(by_round: dict[str, int] | None) -> dict[str, int]:
    """Where an author starts (+1) and stops (-1) counting, by round. It
    counts in a round while its posts in the ratio up to that round sum
    above zero; a retraction is filed under the round that retracted (a
    post superseded in round 3 counts in rounds 0-2, not from 3 on)."""
    out, total, counted = {}, 0, False
    for r in sorted((int(k) for k in (by_round or {})), key=int):
        total += by_round[str(r)]
        if (total > 0) != counted:
            counted = total > 0
            out[str(r)] = 1 if counted else -1
    return out


def count_author(state: dict, authors: MutableMapping[str, dict], agent_id: str, r: str, sign: int) -> None:
    """An author's posts in the ratio in round ``r`` change by ``sign``. The
    simulation keeps only the net change in counted authors per round
    (``author_changes``: their sum up to a round is how many count in it),
    so its value grows with rounds, not with authors."""
    by_round = dict(authors.get(agent_id) or {})
    before = transitions(by_round)
    n = by_round.get(r, 0) + sign
    if n:
        by_round[r] = n
    else:
        by_round.pop(r, None)
    authors[agent_id] = by_round
    after = transitions(by_round)
    if before != after:
        changes = state["author_changes"]
        for k, d in [(k, -d) for k, d in before.items()] + list(after.items()):
            changes[k] = changes.get(k, 0) + d
            if not changes[k]:
                del changes[k]


def migrate_authors(state: dict, authors: MutableMapping[str, dict]) -> None:
    """An older state's per-author counts, into the authors table."""
    for agent_id, by_round in state.pop("authors", {}).items():
        for r, n in by_round.items():
            if n:
                count_author(state, authors, agent_id, r, n)


def stance_as_of(by_round: dict[str, int], round_: int) -> int | None:
    rounds = [int(k) for k in by_round if int(k) <= round_]
    return by_round[str(max(rounds))] if rounds else None


def add(state: dict, s: dict, authors: MutableMapping[str, dict]) -> int:
    """Apply one Stance; return the round it changed."""
    r = str(s["round"])
    sums = state["sums"].setdefault(r, [0.0, 0.0, 0, 0, 0, 0, 0, 0])
    retract = s["kind"] == "retract"
    sign = -1 if retract else 1
    kind = (s.get("retracted_kind") or "post") if retract else s["kind"]
    reading = s.get("reading") or "read"
    if reading not in ("unreadable", "excluded"):
        sums[0] += sign * s["valence"] * s["weight"]
        sums[1] += sign * s["weight"]
        sums[2 if kind == "post" else 3] += sign
    if kind == "post" or reading == "excluded":
        sums[READING_SLOT.get(reading, 4)] += sign
    if kind == "post" and reading not in ("unreadable", "excluded"):
        # Posts in the ratio per author and round: an author counts while
        # at least one of its posts does (a retraction takes it back).
        count_author(state, authors, s["agent_id"], r, sign)
    if s["kind"] == "post" and reading != "unreadable":
        # Held stance per agent as of each round (kept only where it changes):
        # a verdict re-emitted later for an earlier round must count the
        # stances of that round, not today's, or it depends on arrival order.
        held = state["stances"].setdefault(s["agent_id"], {})
        if stance_as_of(held, s["round"]) != s["agent_stance"] or r in held:
            held[r] = s["agent_stance"]
        if s["flipped"]:
            state["flips"][r] = state["flips"].get(r, 0) + 1
    if s["backend"] and not retract:
        # The least reliable stance model that read a counted post caps confidence.
        rel = s.get("reliability", 1.0)
        state["models"][s["backend"]] = min(state["models"].get(s["backend"], rel), rel)
    return s["round"]


def verdict_at(state: dict, sim_id: str, round_: int, settings: VerdictSettings) -> dict:
    rows = [v for r, v in state["sums"].items() if int(r) <= round_]
    total = [sum(v[i] for v in rows) for i in range(SUMS)]
    evidence = Evidence(weighted_sum=total[0], weight_sum=total[1], posts=int(total[2]), reflections=int(total[3]),
                        read=int(total[4]), no_signal=int(total[5]), unreadable=int(total[6]),
                        excluded_reflections=int(total[7]))
    authors = sum(n for r, n in state["author_changes"].items() if int(r) <= round_)
    return verdict_record(
        sim_id=sim_id, question=state["question"], round_=round_, ts=state["closed"][str(round_)], evidence=evidence,
        authors=authors,
        stances=[h for h in (stance_as_of(b, round_) for b in state["stances"].values()) if h is not None],
        flips=state["flips"].get(str(round_), 0), backend="+".join(sorted(state["models"])),
        reliability=min(state["models"].values(), default=1.0),
        min_coverage=settings.min_coverage, min_signal_posts=settings.min_signal_posts)


def sim_events(state: dict, items: list[Incoming], seen, settings: VerdictSettings = VerdictSettings(),
               authors: MutableMapping[str, dict] | None = None) -> tuple[dict, list[dict]]:
    """One simulation's inputs in order -> verdicts to emit (closed rounds
    whose numbers changed, and rounds just closed). ``authors``: the
    simulation's author -> posts in the ratio by round (the authors table;
    a dict where no table is kept)."""
    authors = {} if authors is None else authors
    migrate_authors(state, authors)
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
        changed.add(add(state, r, authors))
    if not changed:
        return state, []
    low = min(changed)
    due = sorted(int(k) for k in state["closed"] if int(k) >= low)
    return state, [verdict_at(state, items[0].record["sim_id"], rnd, settings) for rnd in due]


class TableAuthors(MutableMapping):
    """One simulation's authors in the authors table (keyed ``sim/agent``),
    read through and written back by the batch's effects (what this batch
    wrote is read back before the table has it)."""

    def __init__(self, table, sim_id: str):
        self.table, self.sim_id = table, sim_id
        self.written: dict[str, dict] = {}

    def __getitem__(self, agent_id: str) -> dict:
        if agent_id in self.written:
            return self.written[agent_id]
        found = self.table.get(agent_key(self.sim_id, agent_id))
        if found is None:
            raise KeyError(agent_id)
        return found

    def __setitem__(self, agent_id: str, by_round: dict) -> None:
        self.written[agent_id] = by_round

    def __delitem__(self, agent_id: str) -> None:
        raise NotImplementedError("authors are never removed, only their counts")

    def __iter__(self):
        return iter(self.written)

    def __len__(self) -> int:
        return len(self.written)


def register(app: faust.App, rt: Runtime, *, batch_size: int = 2000, within: float = 0.25):
    table = app.Table(TABLES[0], default=None, partitions=rt.settings.topic_partitions, key_type=bytes)
    applied = app.Table(TABLES[1], default=None, partitions=rt.settings.topic_partitions, key_type=bytes)
    author_table = app.Table(TABLES[2], default=None, partitions=rt.settings.topic_partitions, key_type=bytes)

    async def handle(batch: list[Incoming]) -> Effects:
        groups: dict[bytes, list[Incoming]] = {}
        for inc in batch:
            groups.setdefault(sim_key(inc.record["sim_id"]), []).append(inc)
        effects = Effects()
        for key, items in groups.items():
            pending = {i.record["event_id"] for i in items if i.type_name == "Stance"}
            batch_seen: set[str] = set()

            def seen(event_id: str, key=key) -> bool:
                if event_id in batch_seen or applied.get(key + b"/" + event_id.encode()):
                    return True
                batch_seen.add(event_id)
                return False

            sim_id = items[0].record["sim_id"]
            authors = TableAuthors(author_table, sim_id)
            try:
                with logs.bound_contextvars(sim=sim_id):  # what is logged names the simulation
                    state, verdicts = sim_events(load_state(table.get(key)), items, seen, rt.settings.verdict, authors)
            except Exception as exc:  # keep the inputs, move on
                effects.failed.append((items, exc))
                continue
            effects.outputs += [(VERDICTS, key, v) for v in verdicts]
            effects.state += [(author_table, agent_key(sim_id, a), v, items[-1]) for a, v in sorted(authors.written.items())]
            effects.state.append((table, key, state, items[-1]))
            by_id = {i.record["event_id"]: i for i in items if i.type_name == "Stance"}
            effects.state += [(applied, key + b"/" + e.encode(), True, by_id[e]) for e in sorted(batch_seen & pending)]
        return effects

    return register_batches(app, rt, stage=STAGE, inputs=INPUTS, expected=("Stance", "RoundMarker", "Simulation"),
                            handle=handle, batch_size=batch_size, within=within)
