"""``murmur tail``'s kcat-like parts that need no broker: where reading
starts (-o), and what a record is printed with."""

from __future__ import annotations

import json

import pytest

from connectors.tail import CHANGELOG, Meta, Start, decode, first_offset, parse_offset, render
from streams.serde import default_serde
from streams.state_codec import pack_state


@pytest.mark.parametrize("text,start", [
    ("beginning", Start("beginning")), ("earliest", Start("beginning")), ("end", Start("end")),
    ("0", Start("offset", 0)), ("42", Start("offset", 42)), ("-10", Start("from_end", 10)),
    ("s@1700000000000", Start("time", 1_700_000_000_000)), ("@2023-11-14T22:13:20Z", Start("time", 1_700_000_000_000)),
])
def test_offsets_as_kcat_writes_them(text, start):
    assert parse_offset(text) == start


@pytest.mark.parametrize("text", ["stored", "-", "s@", "@yesterday", "1.5", ""])
def test_an_offset_it_cannot_read_says_what_it_takes(text):
    with pytest.raises(ValueError, match="beginning, end, N, -N"):
        parse_offset(text)


def test_where_each_kind_starts_in_a_partition_holding_100_to_200():
    at = lambda s: first_offset(s, 100, 200)  # noqa: E731
    assert (at(Start("beginning")), at(Start("end"))) == (100, 200)
    assert (at(Start("offset", 150)), at(Start("offset", 5)), at(Start("offset", 10**9))) == (150, 100, 200)
    assert (at(Start("from_end", 10)), at(Start("from_end", 500))) == (190, 100)
    with pytest.raises(ValueError):
        at(Start("time", 1))


POST = {"event_id": "e1", "sim_id": "s1", "agent_id": "a1", "platform": "reddit", "round": 2, "ts": 1_700_000_000_000,
        "action": "CREATE_POST", "content": "bike lanes now", "post_id": "p1", "parent_id": None, "target_agent_id": None,
        "source_ref": "actions.jsonl:3"}


def post_record():
    serde = default_serde()
    fields = {f["name"] for f in serde.schema("Post")["fields"]}
    record = {k: v for k, v in POST.items() if k in fields}
    for f in serde.schema("Post")["fields"]:
        record.setdefault(f["name"], f.get("default"))
    return serde, serde.decode(serde.encode("Post", record))


def test_json_output_carries_key_headers_and_the_kafka_timestamp():
    serde, (type_name, record) = post_record()
    meta = Meta("sim.agent-log.v1", 3, 17, b"s1/a1", 1_700_000_000_123, (("trace", b"abc"), ("bin", b"\xff")))
    out = json.loads(render("json", meta, type_name, record, serde))
    assert out["type"] == "Post" and out["content"] == "bike lanes now"
    assert (out["_topic"], out["_partition"], out["_offset"]) == ("sim.agent-log.v1", 3, 17)
    assert out["_key"] == "s1/a1" and out["_timestamp"] == 1_700_000_000_123
    assert out["_headers"] == {"trace": "abc", "bin": "base64:/w=="}
    pretty = render("pretty", meta, type_name, record, serde)
    assert pretty.startswith("sim.agent-log.v1 p3@17 2023-11-14T22:13:20.123Z key=s1/a1 Post s1 a1 r2")


def test_avro_json_is_avros_own_json_encoding():
    serde, (type_name, record) = post_record()
    out = json.loads(render("avro-json", Meta("t", 0, 0), type_name, record, serde))
    value = out["value"]
    assert value["content"] == "bike lanes now"
    # Avro JSON tags a non-null union value with its branch; null stays null.
    nullable = [f["name"] for f in serde.schema("Post")["fields"]
                if isinstance(f["type"], list) and "null" in f["type"] and record[f["name"]] is not None]
    assert nullable and all(isinstance(value[n], dict) for n in nullable)


def test_a_changelog_record_is_shown_as_agent_state():
    serde = default_serde()
    type_name, record = decode(serde, "murmur-agent-memory-changelog", b"s1/a7", pack_state({"window": [1, 2]}))
    assert type_name == CHANGELOG and record["sim_id"] == "s1" and record["agent_id"] == "a7"
    assert record["state"] == {"window": [1, 2]}
    assert decode(serde, "murmur-agent-memory-changelog", b"s1/a7", None)[1]["state"] is None  # a deleted key
    assert "deleted" in render("pretty", Meta("murmur-agent-memory-changelog", 0, 5, b"s1/a7"), CHANGELOG,
                               decode(serde, "murmur-agent-memory-changelog", b"s1/a7", None)[1])
