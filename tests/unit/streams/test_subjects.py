"""Subject naming strategies (pure: no registry)."""

import pytest

from streams.errors import ConfigError
from streams.subjects import subject_name
from streams.topics import ALL, LEGACY


@pytest.mark.parametrize("strategy,topic,shared,expected", [
    ("topic", "sim.verdicts.v1", False, "sim.verdicts.v1-value"),
    ("record", "sim.verdicts.v1", False, "murmur.v1.Verdict"),
    ("record", None, False, "murmur.v1.Verdict"),  # the record strategy needs no topic
    ("topic_record", "sim.verdicts.v1", False, "sim.verdicts.v1-murmur.v1.Verdict"),
    # a topic with several record types cannot hold one <topic>-value lineage
    ("topic", "sim.agent-log.v1", True, "sim.agent-log.v1-murmur.v1.Verdict"),
    ("record", "sim.agent-log.v1", True, "murmur.v1.Verdict"),
])
def test_subject_names(strategy, topic, shared, expected):
    assert subject_name(strategy, topic=topic, record_name="murmur.v1.Verdict", shared=shared) == expected


@pytest.mark.parametrize("strategy", ["topic", "topic_record"])
def test_topic_strategies_need_the_topic(strategy):
    with pytest.raises(ConfigError, match="needs the topic"):
        subject_name(strategy, topic=None, record_name="murmur.v1.Post")


def test_unknown_strategy_is_refused():
    with pytest.raises(ConfigError, match="unknown subject strategy 'TopicNameStrategy'"):
        subject_name("TopicNameStrategy", topic="t", record_name="murmur.v1.Post")


def test_only_the_agent_log_is_shared():
    # What default_serde() passes as shared topics: the multi-type topics.
    assert {s.name for s in (*ALL, *LEGACY) if len(s.types) > 1} == {"sim.agent-log.v1"}
