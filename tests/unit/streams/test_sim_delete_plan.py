"""What `murmur sim delete` touches (streams/sim_delete.py,
sinks/cassandra_delete.py), decided without Kafka or Cassandra."""

from __future__ import annotations

import pytest

from sinks.cassandra_delete import UnknownLayout, delete_order, sim_tables
from streams.settings import Settings
from streams.sim_delete import (agents_in, append_only, blocking_groups, changelog_pattern, names_agents, of_sim,
                                sim_keyed_compacted)
from streams.topics import CHECKPOINTS, PERSONAS, PUBLISHER_POSITIONS, SIM_STARTS, SIMULATIONS
from streams.topology import changelog_topics


def test_every_table_of_the_schema_that_holds_a_sim_is_reached():
    reach = {t.name: t.reach for t in sim_tables()}
    assert reach == {
        "memories_by_agent": "agent", "reflections_by_agent": "agent", "conflicts_by_agent": "agent",
        "timeline_by_sim": "sim", "agents_by_sim": "sim", "conflicts_by_sim": "sim", "verdicts_by_sim": "sim",
        "personas_by_sim": "sim", "eval_results": "scan"}
    eval_results = next(t for t in sim_tables() if t.name == "eval_results")
    assert eval_results.primary_key == ("case_name", "result_id")  # deleted row by row, by its key
    # The agents of the per-agent partitions come from the tables by sim that name them.
    assert {t.name for t in sim_tables() if t.names_agents} == {
        "timeline_by_sim", "agents_by_sim", "conflicts_by_sim", "personas_by_sim"}


def test_per_agent_tables_go_first_and_the_tables_naming_agents_last():
    order = [t.reach for t in delete_order(sim_tables())]
    assert order == sorted(order, key=["agent", "scan", "sim"].index)


def test_a_table_without_sim_id_is_left_alone_and_an_unknown_layout_is_refused():
    cql = """
    CREATE TABLE IF NOT EXISTS {keyspace}.api_keys (
      key_id text PRIMARY KEY,
      sims set<text>
    );
    CREATE TABLE IF NOT EXISTS {keyspace}.by_sim_and_day (
      sim_id text,
      day int,
      n int,
      PRIMARY KEY ((sim_id, day), n)
    );"""
    with pytest.raises(UnknownLayout, match="by_sim_and_day"):
        sim_tables(cql)
    assert sim_tables(cql.split("CREATE TABLE IF NOT EXISTS {keyspace}.by_sim")[0]) == []


def test_keys_of_a_sim():
    assert of_sim(b"s1", "s1") and of_sim(b"s1/alice", "s1") and of_sim(b"s1/evt-9", "s1")
    assert not of_sim(b"s10/alice", "s1") and not of_sim(b"s", "s1") and not of_sim(None, "s1")
    assert agents_in([b"s1/alice", b"s1/bob", b"s2/carol"], "s1") == {"alice", "bob"}


def test_which_topics_get_tombstones_and_which_keep_the_records():
    assert sim_keyed_compacted() == [PERSONAS, SIMULATIONS, PUBLISHER_POSITIONS, SIM_STARTS]
    assert CHECKPOINTS not in sim_keyed_compacted()  # keyed by checkpoint: offsets of the whole pipeline
    assert all(s.cleanup == "delete" for s in append_only()) and PERSONAS not in append_only()


def test_changelogs_of_this_namespace_only():
    live, ns = Settings(), Settings(namespace="it1")
    for settings in (live, ns):
        for topic in changelog_topics(settings, "all", ["agent", "verdict"]).values():
            assert changelog_pattern(settings).match(topic), topic
    other = changelog_topics(ns, "all", ["agent"])["agent-state"]
    assert not changelog_pattern(live).match(other)
    assert names_agents(changelog_topics(live, "all", ["agent"])["agent-state"], live)
    assert not names_agents(changelog_topics(live, "all", ["verdict"])["verdict-applied"], live)
    assert names_agents(PERSONAS.name, live) and not names_agents(SIMULATIONS.name, live)


def test_running_groups_of_the_namespace_block_the_delete():
    live, ns = Settings(), Settings(namespace="it1")
    members = {"murmur-all": 1, "murmur-redrive": 0, "it1-murmur-all": 2, "murmur-qdrant-sink": 1}
    assert blocking_groups(members, live) == ["murmur-all", "murmur-qdrant-sink"]
    assert blocking_groups(members, ns) == ["it1-murmur-all"]
    assert blocking_groups({"murmur-all": 0}, live) == []
