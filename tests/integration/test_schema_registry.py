"""The serde through a real schema registry: Apicurio Registry's
Confluent-compatible API, started by the project's own scripts
(deploy/registry.py). If it cannot start, the module fails loudly."""

from __future__ import annotations

import copy
import json
import struct
import uuid

import httpx
import pytest

from connectors import synthetic
from deploy import local
from deploy.registry import Registry
from streams.errors import DecodeError, SchemaRejected
from streams.schema_registry import SchemaRegistry
from streams.serde import current_schemas, registry_serde
from streams.settings import get_settings
from streams.topics import ROUTES, topic_name


@pytest.fixture(scope="module")
def settings():
    base = get_settings()
    was_running = local.status(base, ("registry",))["registry"]["running"]
    local.up(base, ("registry",), log=lambda m: print(m, flush=True))  # raises (the tests error) if it cannot start
    yield base.model_copy(update={"schema_registry_url": Registry(base).url})
    if not was_running:  # in memory: nothing worth keeping once the module is done
        local.down(base, ("registry",), log=lambda m: print(m, flush=True))


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    case = tmp_path_factory.mktemp("case")
    (case / "seed.md").write_text("The Greenfield Transit Levy would fund new buses. Supporters praise the growth; "
                                  "critics warn of cost.")
    (case / "question.md").write_text("Will public opinion on the transit levy be positive?")
    return synthetic.generate(case, sim_id=f"sr-{uuid.uuid4().hex[:6]}", seed=5, agents=6, rounds=2).events


def subjects(settings) -> list[str]:
    return httpx.get(f"{settings.schema_registry_url}/subjects", timeout=10).json()


def test_murmur_events_round_trip_through_the_registry(settings, events):
    writer = registry_serde(settings)
    written = []
    for e in events:
        for spec in ROUTES[e.type_name]:
            written.append((e.type_name, e.record, writer.encode(e.type_name, e.record, topic=topic_name(spec))))
    # a fresh serde knows no id: it fetches every writer schema from the registry
    reader = registry_serde(settings)
    for type_name, record, data in written:
        assert data[0] == 0  # Confluent framing: magic byte, then the 4-byte id
        assert reader.decode(data) == (type_name, record)
    types = {e.type_name for e in events}
    assert {"Persona", "Post", "RoundMarker"} <= types
    # TopicNameStrategy for single-type topics; the shared agent log by record
    expected = {"sim.rounds.v1-value", "sim.personas.v1-value",
                "sim.agent-log.v1-murmur.v1.Persona", "sim.agent-log.v1-murmur.v1.Post"}
    assert expected <= set(subjects(settings))


def test_subject_compatibility_is_the_setting(settings, events):
    registry_serde(settings).encode("RoundMarker", next(e.record for e in events if e.type_name == "RoundMarker"),
                                    topic="sim.rounds.v1")
    client = SchemaRegistry.from_settings(settings)
    assert client.compatibility("sim.rounds.v1-value") == settings.schema_registry_compatibility  # FULL_TRANSITIVE by default
    # another level is set just as well, on a subject of its own
    level = "BACKWARD" if settings.schema_registry_compatibility != "BACKWARD" else "FORWARD"
    other = settings.model_copy(update={"schema_registry_compatibility": level})
    topic = f"it-{uuid.uuid4().hex[:8]}"
    registry_serde(other).encode("RoundMarker", next(e.record for e in events if e.type_name == "RoundMarker"),
                                 topic=topic)
    assert client.compatibility(f"{topic}-value") == level


def test_incompatible_schema_change_is_refused(settings):
    client = SchemaRegistry(settings.schema_registry_url, compatibility="FULL_TRANSITIVE")
    subject = f"it-{uuid.uuid4().hex[:8]}-value"
    verdict = current_schemas()["Verdict"].raw
    first = client.id_for(subject, verdict)
    with_default = copy.deepcopy(verdict)
    with_default["fields"].append({"name": "mood", "type": "string", "default": ""})
    assert client.id_for(subject, with_default) != first  # FULL_TRANSITIVE allows a field with a default
    without_default = copy.deepcopy(verdict)
    without_default["fields"].append({"name": "mood", "type": "string"})
    with pytest.raises(SchemaRejected, match=f"refused Verdict under subject {subject}: incompatible"):
        client.id_for(subject, without_default)


def test_unknown_schema_id_is_a_clear_decode_error(settings):
    unknown = 2**31 - 7
    with pytest.raises(DecodeError, match=f"schema id {unknown} is not in the schema registry {settings.schema_registry_url}"):
        registry_serde(settings).decode(b"\x00" + struct.pack(">I", unknown) + b"\x02")


def test_confluents_own_serializers_and_murmurs_serde_read_each_other(settings, events):
    """Same wire format both ways: a consumer written with confluent-kafka's
    AvroDeserializer reads Murmur's records, and Murmur reads records a
    producer wrote with its AvroSerializer."""
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    topic = f"it-{uuid.uuid4().hex[:8]}"
    ctx = SerializationContext(topic, MessageField.VALUE)
    client = SchemaRegistryClient({"url": settings.schema_registry_url})
    marker = next(e.record for e in events if e.type_name == "RoundMarker")
    ours = registry_serde(settings).encode("RoundMarker", marker, topic=topic)
    # fastavro in Confluent's deserializer turns timestamp-millis into datetimes; Murmur keeps epoch ms
    read = {k: round(v.timestamp() * 1000) if hasattr(v, "timestamp") else v
            for k, v in AvroDeserializer(client)(ours, ctx).items()}
    assert read == marker
    schema = current_schemas()["RoundMarker"]
    theirs = AvroSerializer(client, json.dumps(schema.raw))(marker, ctx)
    assert registry_serde(settings).decode(theirs) == ("RoundMarker", marker)
    assert f"{topic}-value" in subjects(settings)  # both under Confluent's TopicNameStrategy subject
