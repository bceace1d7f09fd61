import pytest

from processors.importance import RULE_SCORER, rate_importance, score_batch, to_memory
from processors.runtime import Incoming


@pytest.mark.parametrize("action,content,expected", [
    ("REFRESH", "I refreshed my feed", 1),
    ("LIKE_POST", "I liked a post", 2),
    ("CREATE_POST", "nice weather", 4),
    ("CREATE_POST", "The council vote is a scandal!", 6),  # charged word + exclamation
    ("CREATE_POST", "I will never accept 12 million for this disaster, a scandal and a fraud!", 9),  # 4+2+1+1+1
    ("UNKNOWN_ACTION", "x", 2),
])
def test_rule_examples(action, content, expected):
    assert rate_importance(action, content) == expected


def test_rule_orders_by_content_and_stays_in_range():
    mundane = rate_importance("LIKE_POST", "I liked a post")
    opinion = rate_importance("CREATE_POST", "I believe the plan is a disaster for 300 shops!")
    assert mundane < opinion
    long = rate_importance("CREATE_POST", "word " * 100)
    assert long == 6  # base 4 + >140 + >400
    for action in ("REFRESH", "CREATE_POST", "INTERVIEW"):
        for text in ("", "!" * 5000, "crisis scandal war " * 50 + "I will 1"):
            assert 1 <= rate_importance(action, text) <= 10


def test_scored_memory_is_deterministic_and_carries_provenance():
    inc = Incoming("Observation", {"event_id": "e1", "sim_id": "s", "round": 3, "ts": 10, "agent_id": "a",
                                   "action": "LIKE_POST", "content": "I liked a post", "platform": "twitter"},
                   "sim.observations.v1", 2, 41, b"s/a")
    (m,) = score_batch([inc])
    assert m == to_memory(inc, importance=2, scorer=RULE_SCORER)
    assert m["memory_id"] == "e1" and m["kind"] == "observation" and m["public"] is False
    assert (m["source_topic"], m["source_partition"], m["source_offset"]) == ("sim.observations.v1", 2, 41)
    assert score_batch([inc])[0]["event_id"] == m["event_id"]
