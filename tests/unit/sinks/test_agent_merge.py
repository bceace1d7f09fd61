"""The merge behind /agents pages: two lists sorted by agent id, read to
one row more than a page, give the page exactly and say whether more follow."""

from __future__ import annotations

import random

import pytest

from sinks.cassandra_store import merge_agents


def pages(seen: list[str], personas: list[str], limit: int) -> list[str]:
    """Every page, each read as agents_page reads it (ids after the last one
    given, limit + 1 of each table)."""
    out, after = [], ""
    while True:
        a = [x for x in seen if x > after][:limit + 1]
        p = [{"agent_id": x, "name": x.upper()} for x in personas if x > after][:limit + 1]
        rows, more = merge_agents(a, p, limit)
        assert len(rows) <= limit and (not more or len(rows) == limit)
        assert all((r["persona"] is not None) == (r["agent_id"] in personas) for r in rows)
        out += [r["agent_id"] for r in rows]
        if not more:
            return out
        after = rows[-1]["agent_id"]


@pytest.mark.parametrize("seed", range(20))
def test_pages_of_the_merge_hold_every_agent_once_in_order(seed):
    rng = random.Random(seed)
    universe = [f"a{i:03d}" for i in range(rng.randint(0, 60))]
    seen = sorted(x for x in universe if rng.random() < 0.7)
    personas = sorted(x for x in universe if x not in seen or rng.random() < 0.5)
    for limit in (1, 2, 5, 100):
        assert pages(seen, personas, limit) == sorted(set(seen) | set(personas))


def test_an_agent_in_both_lists_comes_once_with_its_persona():
    rows, more = merge_agents(["a", "b"], [{"agent_id": "b", "name": "B"}, {"agent_id": "c", "name": "C"}], 2)
    assert rows == [{"agent_id": "a", "persona": None}, {"agent_id": "b", "persona": {"agent_id": "b", "name": "B"}}]
    assert more
