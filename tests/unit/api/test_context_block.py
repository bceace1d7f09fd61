"""The context block's decisions, without services: order, budget, caps, ids."""

from hypothesis import given
from hypothesis import strategies as st

from api.context import MAX_REFLECTIONS, assemble, tokens


def reflection(i):
    return {"reflection_id": f"r{i}", "round": i, "ts": i, "content": f"belief number {i}"}


def conflict(i):
    return {"conflict_id": f"c{i}", "round": i, "ts": i, "old_memory_id": f"o{i}", "new_memory_id": f"n{i}",
            "old_content": "the plan is good", "new_content": "the plan is bad", "reason": "it reversed"}


def memory(i, size=40):
    return {"memory_id": f"m{i}", "round": i, "importance": 5, "content": "x" * size}


def test_sections_come_in_order_best_first_and_cite_their_ids():
    block = assemble(budget_tokens=10_000, reflections=[reflection(i) for i in range(5)],
                     superseded=[conflict(1)], memories=[memory(1), memory(2)])
    text = block.text
    assert text.index("What you have come to believe") < text.index("Beliefs you changed") < text.index("What you remember")
    assert [r["reflection_id"] for r in block.reflections] == ["r0", "r1", "r2"]  # the newest few, as given
    assert block.left_out == {"reflections": 5 - MAX_REFLECTIONS, "superseded": 0, "memories": 0}
    assert block.rests_on == ["r0", "r1", "r2", "c1", "o1", "n1", "m1", "m2"]
    assert 'You once held: "the plan is good". Now: "the plan is bad"' in text and "why: it reversed" in text


def test_an_item_that_does_not_fit_is_left_out_whole_and_smaller_later_ones_still_go_in():
    block = assemble(budget_tokens=30, reflections=[], superseded=[],
                     memories=[memory(1, 20), memory(2, 400), memory(3, 20)])
    assert [m["memory_id"] for m in block.memories] == ["m1", "m3"] and block.left_out["memories"] == 1
    assert "x" * 400 not in block.text


def test_nothing_fits_an_empty_block():
    block = assemble(budget_tokens=16, reflections=[], superseded=[], memories=[memory(1, 400)])
    assert block.text == "" and block.used_tokens == 0 and block.rests_on == []


@given(st.integers(16, 2_000), st.lists(st.integers(0, 600), max_size=30), st.lists(st.integers(0, 300), max_size=6))
def test_the_block_never_exceeds_its_budget(budget, memory_sizes, belief_sizes):
    block = assemble(budget_tokens=budget,
                     reflections=[{**reflection(i), "content": "b" * n} for i, n in enumerate(belief_sizes)],
                     superseded=[conflict(i) for i in range(len(belief_sizes))],
                     memories=[memory(i, n) for i, n in enumerate(memory_sizes)])
    assert tokens(block.text) <= block.used_tokens <= budget
    shown = len(block.memories) + len(block.reflections) + len(block.superseded)
    assert shown + sum(block.left_out.values()) == len(memory_sizes) + 2 * len(belief_sizes)
