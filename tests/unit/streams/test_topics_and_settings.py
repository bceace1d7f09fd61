import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from streams import topics
from streams.serde import current_schemas
from streams.settings import Settings
from tests.paths import ROOT



def test_every_topic_declared_once_with_a_schema():
    names = [s.name for s in topics.ALL]
    assert len(names) == len(set(names)) == 15
    for spec in topics.ALL:
        assert all(t in current_schemas() for t in spec.types)
    assert topics.PERSONAS.config()["cleanup.policy"] == "compact"
    assert topics.CHECKPOINTS.config()["cleanup.policy"] == "compact"


def test_no_topic_name_spelled_outside_the_registry():
    pattern = re.compile("|".join(re.escape(s.name) for s in topics.ALL))
    offenders = []
    for path in ROOT.glob("*/**/*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in ("tests", ".venv", "docs") or rel == Path("streams/topics.py"):
            continue
        if pattern.search(path.read_text()):
            offenders.append(str(rel))
    assert offenders == []


def test_namespaces_isolate_derived_topics_only():
    assert topics.topic_name(topics.SCORED, "eval1") == "eval1.memory.scored.v1"
    assert topics.topic_name(topics.POSTS, "eval1") == "sim.posts.v1"
    assert topics.by_name("eval1.memory.scored.v1") is topics.SCORED
    with pytest.raises(KeyError, match="unknown topic"):
        topics.by_name("nope")


def test_settings_from_env_are_frozen_and_derive_local_ports(monkeypatch):
    monkeypatch.setenv("MURMUR_SERVICES__KAFKA_PORT", "39092")
    monkeypatch.setenv("MURMUR_LLM__FAST__MODEL", "m-fast")
    s = Settings()
    assert s.kafka_bootstrap == "127.0.0.1:39092"
    assert s.llm.fast.model == "m-fast"
    with pytest.raises(ValidationError):
        s.namespace = "x"
    monkeypatch.setenv("MURMUR_KAFKA_BOOTSTRAP", "broker:9092")
    assert Settings().kafka_bootstrap == "broker:9092"


def test_settings_reject_unknown_keys():
    with pytest.raises(ValidationError):
        Settings(kafka_bootstrapp="typo")


def test_a_role_given_in_part_keeps_its_own_model(monkeypatch):
    # Found by the monitoring test: MURMUR_LLM__FAST__URL alone used to make
    # the fast role the balanced model (LlmRole's own default).
    from streams.settings import ROLE_MODELS

    monkeypatch.setenv("MURMUR_LLM__FAST__URL", "http://gpu-1:8000/v1")
    monkeypatch.setenv("MURMUR_LLM__HEAVY__MODEL", "big-model")
    llm = Settings().llm
    assert (llm.fast.url, llm.fast.model) == ("http://gpu-1:8000/v1", ROLE_MODELS["fast"])
    assert llm.heavy.model == "big-model" and llm.balanced.model == ROLE_MODELS["balanced"]


def test_processor_groups_name_workers_by_processors_or_by_group_name():
    from streams.topology import configured_groups

    s = Settings(processor_groups=("all", "agents=agent,cassandra-sink", " judge = verdict "))
    assert configured_groups(s) == [("all", "all"), ("agents", "agent,cassandra-sink"), ("judge", "verdict")]
    for bad in ("scoring=", "=agent", "scoring=agent,nonsense", "nonsense"):
        with pytest.raises(ValueError, match="nonsense|expected PROCESSORS"):
            configured_groups(Settings(processor_groups=(bad,)))


def test_replication_and_stall_guard_settings_are_bounded(monkeypatch):
    for name, value in (("MURMUR_TOPIC_REPLICATION", "0"), ("MURMUR_STALL_CHECK_S", "-1"),
                        ("MURMUR_STALL_AFTER_S", "0"), ("MURMUR_TOPIC_REPLICATION", "three"),
                        ("MURMUR_AGENT_BATCHES_IN_FLIGHT", "0"), ("MURMUR_AGENT_BATCHES_IN_FLIGHT", "two"),
                        ("MURMUR_STAGE_BATCH_WAIT_MS", "0"), ("MURMUR_STAGE_BATCH_WAIT_MS", "6000")):
        monkeypatch.setenv(name, value)
        with pytest.raises(ValidationError, match=name.removeprefix("MURMUR_").lower()):
            Settings()
        monkeypatch.delenv(name)
    assert Settings(topic_replication=3, stall_check_s=0).topic_replication == 3


def test_a_bad_processor_group_stops_the_worker_at_start(tmp_path):
    from processors.worker import build

    settings = Settings(state_dir=tmp_path, processor_groups=("scoring=agent,nonsense",))
    with pytest.raises(ValueError, match="nonsense"):
        build(settings, ["checkpointer"])


def test_group_ids_make_valid_changelog_topic_names():
    # Faust names a table's changelog <group id>-<table>-changelog; Kafka
    # refuses a topic name with a comma.
    from streams.app import group_id

    gid = group_id(Settings(namespace="ns1"), "importance,cassandra-sink")
    assert gid == "ns1-murmur-importance_cassandra-sink"
    assert re.fullmatch(r"[A-Za-z0-9._-]+", f"{gid}-reflection-state-changelog")


def test_fallback_roles_are_checked_when_settings_load():
    from streams.settings import LlmSettings, setting_errors

    assert LlmSettings(fallback={"heavy": ["balanced", "fast"]}).fallback["heavy"] == ["balanced", "fast"]
    for bad, says in (({"fast": ["fsat"]}, "'fsat' is not a role"), ({"fsat": []}, "'fsat' is not a role"),
                      ({"balanced": ["balanced"]}, "falls back to itself")):
        with pytest.raises(ValidationError) as exc:
            Settings(llm={"fallback": bad})
        [line] = setting_errors(exc.value)
        assert line.startswith("MURMUR_LLM__FALLBACK: ") and says in line


def test_a_session_timeout_the_broker_would_refuse_is_a_settings_error(monkeypatch):
    """Below the broker's group.min.session.timeout.ms (6 s) and three 3 s
    heartbeats the group could not be joined: refused at start, named."""
    from pydantic import ValidationError

    monkeypatch.setenv("MURMUR_FAUST_SESSION_TIMEOUT_S", "3")
    with pytest.raises(ValidationError, match="faust_session_timeout_s"):
        Settings()
    monkeypatch.setenv("MURMUR_FAUST_SESSION_TIMEOUT_S", "soon")
    with pytest.raises(ValidationError, match="faust_session_timeout_s"):
        Settings()
    monkeypatch.setenv("MURMUR_FAUST_SESSION_TIMEOUT_S", "15")
    assert Settings().faust_session_timeout_s == 15.0


def test_a_reader_after_one_simulation_decodes_only_its_keys():
    from streams.topics import agent_key, may_be_of_sim, sim_key

    assert may_be_of_sim(sim_key("s1"), "s1") and may_be_of_sim(agent_key("s1", "7"), "s1")
    assert not may_be_of_sim(sim_key("s10"), "s1") and not may_be_of_sim(agent_key("s10", "7"), "s1")
    assert not may_be_of_sim(agent_key("s2", "s1"), "s1")
    assert may_be_of_sim(None, "s1")  # no key: could be anyone's, so it is decoded
    assert may_be_of_sim(agent_key("s1/x", "7"), "s1")  # necessary only: its record says sim s1/x
