"""verdict: per simulation, at each round end, where opinion stands.

The simulation's question comes from its Simulation event (same key).
Input is cheap by design: the stance processor did the per-post work keyed
by author and re-keyed its contributions by simulation; round markers are
keyed by simulation too, so both meet on one partition. State per
simulation is a handful of sums per round (weighted valence, weight, posts
and reflections in the ratio, posts read with and without a stance signal,
posts unreadable, reflections excluded), each agent's held stance by round
(only where it changes), the net change in authors counted per round,
flips per round and the rounds closed so far. Two things grow with the
number of authors and live in tables of their own, keyed per author, so the
per-simulation value stays small however many posts, agents and rounds
there are: how far each author's contributions were applied, and each
author's posts in the ratio by round. Kept in the simulation's value, the
latter reached the record size limit at 3,000 agents x 70 rounds (a
1,065,433-byte changelog record) and the worker crashed on every restart.

What was applied is one number per author (:class:`Applied`): the agent
pass numbers each author's contributions in the order it emits them
(``seq``), and one author's contributions reach this stage in that order
(one partition of the agent log, one idempotent producer, and each input
partition read in offset order, ``strict_order``), so a redelivered one
repeats a number already applied. The table used to keep
one key per contribution: 539,614 keys after the 30-minute soak, growing
with every post for as long as the worker ran. Contributions written before
there was a ``seq`` (0) are still told apart by their ids.

Topics give no order across them: a contribution may arrive after the
marker of its round. The verdict of every closed round it affects is then
emitted again (same event id, so the read model's row is rewritten), and
once the input is processed every verdict equals a replay's: replays run
these same functions (``processors/batch.py``).
"""

from __future__ import annotations

from typing import Callable, MutableMapping

import faust

from processors.opinion import Evidence, verdict_record
from streams import logs
from streams.runtime import Effects, Incoming, Runtime, register_batches, with_defaults
from streams.settings import VerdictSettings
from streams.state_codec import pack_small, pack_state, unpack_value
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
        if seen(r):
            continue  # redelivered contribution
        changed.add(add(state, r, authors))
    if not changed:
        return state, []
    low = min(changed)
    due = sorted(int(k) for k in state["closed"] if int(k) >= low)
    return state, [verdict_at(state, items[0].record["sim_id"], rnd, settings) for rnd in due]


class Applied:
    """What a simulation's contributions were applied, as the verdict stage
    decides it: per author, the highest ``seq`` applied; for a contribution
    without one (written before there was), its id. ``stored(key)`` reads
    the table (None when absent); :meth:`writes` is what to write back."""

    def __init__(self, stored: Callable[[str], object]):
        self.stored = stored
        self.high: dict[str, int] = {}  # author -> highest seq applied in this batch
        self.ids: set[str] = set()  # contributions without seq applied in this batch

    def __call__(self, r: dict) -> bool:
        """True when ``r`` was applied before (skip it); else it counts as applied now."""
        seq = r.get("seq") or 0
        if seq <= 0:
            if r["event_id"] in self.ids or self.stored(r["event_id"]):
                return True
            self.ids.add(r["event_id"])
            return False
        agent = r["agent_id"]
        high = self.high.get(agent)
        if high is None:
            high = int(self.stored(author_entry(agent)) or 0)
        # The id check covers the upgrade: a contribution applied by id before
        # there was a seq, redelivered by the new version with one.
        if seq <= high or self.stored(r["event_id"]):
            return True
        self.high[agent] = seq
        return False

    def writes(self) -> list[tuple[str, object]]:
        """(table key suffix, value) for everything applied in this batch."""
        return ([(author_entry(a), n) for a, n in sorted(self.high.items())]
                + [(e, True) for e in sorted(self.ids)])


def author_entry(agent_id: str) -> str:
    # "@" cannot start a contribution id (a hex digest), so an author's
    # entry never meets an id's in the applied table.
    return "@" + agent_id


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
        found = unpack_value(self.table.get(agent_key(self.sim_id, agent_id)))
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


def register(app: faust.App, rt: Runtime, *, batch_size: int = 2000, within: float | None = None):
    # Values are bytes (streams/state_codec.py), decoded when read: Faust's
    # json serializer kept every value decoded, and recovery decoded every
    # version of a 300 KB simulation state read back from the changelog. The
    # soak's worker held 1.29 GB of such objects at its peak after a restart
    # (memray), for 2 MB of live verdict state.
    table, applied, author_table = (
        app.Table(name, default=None, partitions=rt.settings.topic_partitions, key_type=bytes, value_type=bytes)
        for name in TABLES)

    async def handle(batch: list[Incoming]) -> Effects:
        groups: dict[bytes, list[Incoming]] = {}
        for inc in batch:
            groups.setdefault(sim_key(inc.record["sim_id"]), []).append(inc)
        effects = Effects()
        for key, items in groups.items():
            applied_now = Applied(lambda suffix, key=key: unpack_value(applied.get(key + b"/" + suffix.encode())))
            sim_id = items[0].record["sim_id"]
            authors = TableAuthors(author_table, sim_id)
            try:
                with logs.bound_contextvars(sim=sim_id):  # what is logged names the simulation
                    state, verdicts = sim_events(load_state(unpack_value(table.get(key))), items, applied_now,
                                                 rt.settings.verdict, authors)
            except Exception as exc:  # keep the inputs, move on
                effects.failed.append((items, exc))
                continue
            effects.outputs += [(VERDICTS, key, v) for v in verdicts]
            effects.state += [(author_table, agent_key(sim_id, a), pack_small(v), items[-1])
                              for a, v in sorted(authors.written.items())]
            effects.state.append((table, key, pack_state(state), items[-1]))
            # Every key of one simulation is on its partition: the batch's
            # last input carries them all (as it does the state's).
            effects.state += [(applied, key + b"/" + k.encode(), pack_small(v), items[-1])
                              for k, v in applied_now.writes()]
        return effects

    # Strict order: a contribution Faust skipped and the stall guard read
    # again after later ones of its author would repeat no number and be
    # counted as applied already (a checkpoint restore's verdicts came out 4
    # posts short after such a skip).
    return register_batches(app, rt, stage=STAGE, inputs=INPUTS, expected=("Stance", "RoundMarker", "Simulation"),
                            handle=handle, batch_size=batch_size, within=within, strict_order=True)
