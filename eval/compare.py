"""Two read models of one simulation, row by row: the live one and a replay's.

A replay of the log (``eval.replay``) must rebuild the read model the live
workers built, whatever faults they went through: every memory with the same
importance and validity, every reflection on the same sources, every
conflict, every round's verdict. :func:`snapshot` takes the rows that say so
(not write times or vectors' bytes: a rewrite by a redelivered batch leaves
them different and means nothing), :func:`differences` compares two.
"""

from __future__ import annotations

from typing import Protocol

PARTS = ("memories", "reflections", "conflicts", "verdicts")


class ReadModel(Protocol):
    def agents(self, sim_id: str) -> list[str]: ...
    def memories(self, sim_id: str, agent_id: str, *, limit: int = 50) -> list[dict]: ...
    def reflections(self, sim_id: str, agent_id: str, *, limit: int = 50) -> list[dict]: ...
    def conflicts(self, sim_id: str, *, limit: int = 50) -> list[dict]: ...
    def verdicts(self, sim_id: str, *, limit: int = 1000) -> list[dict]: ...


def snapshot(store: ReadModel, sim: str, *, per_agent: int = 100_000) -> dict[str, list[tuple]]:
    """Every row of a simulation that a replay must reproduce."""
    agents = sorted(store.agents(sim))
    memories = sorted((m["memory_id"], m["kind"], m["importance"], m["valid_to"], m["superseded_by"])
                      for a in agents for m in store.memories(sim, a, limit=per_agent))
    reflections = sorted((r["reflection_id"], tuple(r["source_ids"]), r["content"]) for a in agents
                         for r in store.reflections(sim, a, limit=per_agent))
    conflicts = sorted((c["conflict_id"], c["old_memory_id"], c["new_memory_id"])
                       for c in store.conflicts(sim, limit=10_000_000))
    verdicts = [(v["round"], v["support_ratio"], v["post_count"], v["author_count"], v["stance_positive"],
                 v["stance_negative"], v["flips"]) for v in store.verdicts(sim, limit=1_000_000)]
    return {"memories": memories, "reflections": reflections, "conflicts": conflicts, "verdicts": verdicts}


def differences(got: dict[str, list[tuple]], want: dict[str, list[tuple]], *, examples: int = 5) -> dict[str, dict]:
    """Per part: rows in each, rows only in one of them (with a few examples).
    Equal read models have no part with anything only on one side."""
    out = {}
    for part in PARTS:
        g, w = set(got.get(part, ())), set(want.get(part, ()))
        only_got, only_want = sorted(g - w), sorted(w - g)
        out[part] = {"rows": len(got.get(part, ())), "reference_rows": len(want.get(part, ())),
                     "only_here": len(only_got), "only_in_reference": len(only_want),
                     "examples_here": [list(map(str, r)) for r in only_got[:examples]],
                     "examples_reference": [list(map(str, r)) for r in only_want[:examples]],
                     # Same set, different multiplicity or order (verdicts keep round order).
                     "same": got.get(part, []) == want.get(part, [])}
    return out


def same(diff: dict[str, dict]) -> bool:
    return all(d["same"] for d in diff.values())
