import io
import json
import struct

import fastavro
import pytest

from streams.errors import ConfigError, DecodeError, EncodeError, ServiceUnavailable, UnknownSchemaId
from streams.serde import SINGLE_OBJECT_MAGIC, AvroSerde, current_schemas, schema_names

EXPECTED_TYPES = {"Post", "Observation", "Persona", "RoundMarker", "ScoredMemory", "Reflection", "Conflict",
                  "Verdict", "LlmCall", "Checkpoint", "DeadLetter", "EvalResult", "Stance", "Simulation",
                  "PublisherPosition", "SimStart"}


def sample(schema: dict | str | list, name: str = "x"):
    """A valid value for any schema we use, with every field filled."""
    if isinstance(schema, list):
        non_null = [s for s in schema if s != "null"]
        return sample(non_null[0], name)
    if isinstance(schema, dict):
        t = schema["type"]
        if t == "record":
            return {f["name"]: sample(f["type"], f["name"]) for f in schema["fields"]}
        if t == "array":
            return [sample(schema["items"], name), sample(schema["items"], name)]
        if t == "long" and schema.get("logicalType") == "timestamp-millis":
            return 1_767_225_600_123
        return sample(t, name)
    return {"string": f"{name}-ü✓", "int": 7, "long": 2**40, "double": 0.25, "float": 0.5, "boolean": True,
            "bytes": b"\x00\xffraw"}[schema]


def test_one_schema_per_event_type_with_docs():
    schemas = current_schemas()
    assert set(schemas) == EXPECTED_TYPES
    for info in schemas.values():
        assert info.full_name.startswith("murmur.v1.")
        assert info.raw.get("doc"), info.name
        for field in info.raw["fields"]:
            assert field.get("doc"), f"{info.name}.{field['name']} has no doc"


@pytest.mark.parametrize("type_name", sorted(EXPECTED_TYPES))
def test_round_trip_every_schema(type_name):
    serde = AvroSerde()
    record = sample(current_schemas()[type_name].raw)
    data = serde.encode(type_name, record, check=True)
    assert data[:2] == SINGLE_OBJECT_MAGIC
    name, back = serde.decode(data)
    assert name == type_name
    # float fields go through 32 bits; our samples are exact in binary.
    assert back == record


def crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO as the Avro specification defines it, written out
    independently of fastavro to check our header."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for b in data:
        fp = (fp >> 8) ^ table[(fp ^ b) & 0xFF]
    return fp


def test_single_object_header_is_the_spec_fingerprint():
    info = current_schemas()["Post"]
    canonical = fastavro.schema.to_parsing_canonical_form(info.parsed)
    expected = struct.pack("<Q", crc64_avro(canonical.encode()))
    data = AvroSerde().encode("Post", sample(info.raw))
    assert data[2:10] == expected
    # and any Avro reader decodes the body with the schema file alone
    body = io.BytesIO(data[10:])
    assert fastavro.schemaless_reader(body, info.parsed)["event_id"] == "event_id-ü✓"


class MemoryRegistry:
    """The serde's side of a registry (id_for / schema_for), in memory: the
    HTTP client is tested in test_schema_registry_client.py."""

    def __init__(self):
        self.by_id, self.ids, self.calls = {}, {}, []

    def id_for(self, subject, schema):
        self.calls.append(subject)
        key = (subject, json.dumps(schema, sort_keys=True))
        if key not in self.ids:
            self.ids[key] = len(self.ids) + 100
            self.by_id[self.ids[key]] = schema
        return self.ids[key]

    def schema_for(self, schema_id):
        if schema_id not in self.by_id:
            raise UnknownSchemaId(f"schema id {schema_id} is not in the schema registry")
        return self.by_id[schema_id]


def test_confluent_framing_with_registry():
    registry = MemoryRegistry()
    serde = AvroSerde(registry)
    record = sample(current_schemas()["Verdict"].raw)
    data = serde.encode("Verdict", record, topic="sim.verdicts.v1")
    assert data[0] == 0 and struct.unpack(">I", data[1:5])[0] == 100
    assert registry.calls == ["sim.verdicts.v1-value"]  # TopicNameStrategy by default
    assert serde.decode(data) == ("Verdict", record)
    # a consumer without a registry says what is missing
    with pytest.raises(DecodeError, match="MURMUR_SCHEMA_REGISTRY_URL"):
        AvroSerde().decode(data)


def test_registry_is_asked_once_per_topic_and_type():
    registry = MemoryRegistry()
    serde = AvroSerde(registry)
    record = sample(current_schemas()["Verdict"].raw)
    first = serde.encode("Verdict", record, topic="sim.verdicts.v1")
    for _ in range(50):
        assert serde.encode("Verdict", record, topic="sim.verdicts.v1") == first
    assert registry.calls == ["sim.verdicts.v1-value"]


def test_shared_topic_and_strategies_name_the_subject():
    record = sample(current_schemas()["Post"].raw)
    registry = MemoryRegistry()
    AvroSerde(registry, shared_topics=frozenset({"sim.agent-log.v1"})).encode("Post", record, topic="sim.agent-log.v1")
    AvroSerde(registry, subject_strategy="record").encode("Post", record, topic="sim.agent-log.v1")
    AvroSerde(registry, subject_strategy="topic_record").encode("Post", record, topic="t")
    assert registry.calls == ["sim.agent-log.v1-murmur.v1.Post", "murmur.v1.Post", "t-murmur.v1.Post"]


def test_topic_strategy_without_topic_is_refused():
    with pytest.raises(ConfigError, match="needs the topic"):
        AvroSerde(MemoryRegistry()).encode("Verdict", sample(current_schemas()["Verdict"].raw))


def test_reframe_gives_each_topic_its_subject_id():
    registry = MemoryRegistry()
    serde = AvroSerde(registry)
    record = sample(current_schemas()["Persona"].raw)
    data = serde.encode("Persona", record, topic="a")
    other = serde.reframe(data, "Persona", "b")
    assert other[5:] == data[5:] and other[1:5] != data[1:5]
    assert serde.decode(other) == ("Persona", record)
    # without a registry the bytes do not depend on the topic
    plain = AvroSerde().encode("Persona", record)
    assert AvroSerde().reframe(plain, "Persona", "b") is plain


def test_unknown_schema_id_is_a_decode_error_but_an_outage_is_not():
    serde = AvroSerde(MemoryRegistry())
    with pytest.raises(DecodeError, match="schema id 4242 is not in the schema registry"):
        serde.decode(b"\x00" + struct.pack(">I", 4242) + b"\x02")

    class Down(MemoryRegistry):
        def schema_for(self, schema_id):
            raise ServiceUnavailable("schema registry http://r: connection refused")

    with pytest.raises(ServiceUnavailable):
        AvroSerde(Down()).decode(b"\x00" + struct.pack(">I", 7) + b"\x02")


@pytest.mark.parametrize("data,reason", [
    (b"", "empty"),
    (b"\xc3\x01\x00", "truncated"),
    (b"\xc3\x01" + b"\x00" * 8 + b"x", "unknown schema fingerprint"),
    (b"garbage bytes", "not a Murmur Avro message"),
    (b"\x00\x00", "truncated Confluent"),
])
def test_malformed_bytes_raise_decode_error(data, reason):
    with pytest.raises(DecodeError, match=reason):
        AvroSerde().decode(data)


def test_truncated_body_and_trailing_bytes_and_wrong_schema():
    serde = AvroSerde()
    data = serde.encode("Post", sample(current_schemas()["Post"].raw))
    with pytest.raises(DecodeError, match="corrupt Avro body"):
        serde.decode(data[:-5])
    with pytest.raises(DecodeError, match="trailing bytes"):
        serde.decode(data + b"\x00\x01")
    with pytest.raises(DecodeError, match="wrong schema: got Post, expected Observation"):
        serde.decode(data, "Observation")


def test_encode_names_the_bad_field():
    record = sample(current_schemas()["Post"].raw)
    record["round"] = "three"
    with pytest.raises(EncodeError) as err:
        AvroSerde().encode("Post", record, check=True)
    assert err.value.field == "round"
    with pytest.raises(EncodeError, match="unknown event type"):
        AvroSerde().encode("Nope", {})


def test_schema_names_are_sorted_and_complete():
    assert schema_names() == sorted(EXPECTED_TYPES)


def test_embeddings_travel_packed_and_older_records_still_read():
    import numpy as np

    from streams.vectors import pack, vector_of

    vec = [0.25, -0.5, 1.0, 0.1]
    rec = {"event_id": "e", "memory_id": "m", "sim_id": "s", "round": 1, "ts": 1, "agent_id": "a", "kind": "post",
           "public": True, "content": "x", "importance": 5, "scorer": "t", "embedding_f32": pack(vec),
           "source_topic": "t", "source_partition": 0, "source_offset": 0}
    serde = AvroSerde()
    _, back = serde.decode(serde.encode("ScoredMemory", rec, check=True), "ScoredMemory")
    assert back["embedding"] == [] and np.allclose(vector_of(back), vec, atol=1e-7)
    assert len(back["embedding_f32"]) == 4 * len(vec)
    old = {**rec, "embedding_f32": b"", "embedding": vec}  # written before the packed field existed
    assert np.allclose(vector_of(old), vec) and len(vector_of({**rec, "embedding_f32": b""})) == 0
    assert pack([]) == b"" and pack(None) == b""
