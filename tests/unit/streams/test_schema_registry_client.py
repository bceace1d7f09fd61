"""Murmur's side of the registry client (streams/schema_registry.py): the
order of its calls to confluent-kafka's SchemaRegistryClient, its caching,
and how the registry's answers become Murmur's errors. The client itself is
replaced by a recorder here; tests/integration/test_schema_registry.py runs
the real one against a real registry."""

import json

import pytest
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.error import SchemaRegistryError

from streams.errors import ConfigError, SchemaRejected, ServiceUnavailable, UnknownSchemaId
from streams.schema_registry import SchemaRegistry, basic_auth, client_conf
from streams.serde import current_schemas
from streams.settings import Settings

POST = current_schemas()["Post"].raw


class Recorder:
    """Answers by method name: a value, or an exception to raise."""

    def __init__(self, **answers):
        self.answers, self.seen = answers, []

    def __getattr__(self, name):
        def call(*args, **kwargs):
            self.seen.append((name, args, kwargs))
            answer = self.answers[name]
            if isinstance(answer, Exception):
                raise answer
            return answer(*args, **kwargs) if callable(answer) else answer
        return call


def error(status: int, code: int, message: str = "") -> SchemaRegistryError:
    return SchemaRegistryError(status, code, message)


def registry(**answers) -> tuple[SchemaRegistry, Recorder]:
    rec = Recorder(**answers)
    return SchemaRegistry("http://registry:8081/", client=rec), rec


def test_first_registration_sets_compatibility_then_registers_once():
    rec = Recorder(set_compatibility="FULL_TRANSITIVE", register_schema=17)
    reg = SchemaRegistry("http://registry:8081", client=rec, compatibility="FULL_TRANSITIVE")
    assert reg.id_for("sim.agent-log.v1-value", POST) == 17
    assert reg.id_for("sim.agent-log.v1-value", POST) == 17  # cached
    assert [name for name, _, _ in rec.seen] == ["set_compatibility", "register_schema"]
    (_, _, put), (_, (subject, schema), _) = rec.seen
    assert put == {"subject_name": "sim.agent-log.v1-value", "level": "FULL_TRANSITIVE"}
    assert subject == "sim.agent-log.v1-value" and isinstance(schema, Schema)
    assert schema.schema_type == "AVRO" and json.loads(schema.schema_str) == POST
    assert reg.schema_for(17) == POST  # known from the registration: no request
    assert len(rec.seen) == 2


def test_incompatible_and_invalid_schemas_are_refused_clearly():
    reg, _ = registry(register_schema=error(409, 409, "Schema being registered is incompatible"))
    with pytest.raises(SchemaRejected, match="refused Post under subject t-value: incompatible"):
        reg.id_for("t-value", POST)
    reg, _ = registry(register_schema=error(422, 42201, "bad"))
    with pytest.raises(SchemaRejected, match="invalid schema"):
        reg.id_for("t-value", POST)


def test_unknown_id_and_lookup():
    reg, _ = registry(get_schema=lambda schema_id: (_ for _ in ()).throw(error(404, 40403, "Schema 9 not found"))
                      if schema_id == 9 else Schema(json.dumps(POST), "AVRO"))
    with pytest.raises(UnknownSchemaId, match="schema id 9 is not in the schema registry http://registry:8081"):
        reg.schema_for(9)
    assert reg.schema_for(3) == POST


def test_compatibility_read_back():
    reg, _ = registry(get_compatibility=lambda subject_name: "FULL_TRANSITIVE")
    assert reg.compatibility("t-value") == "FULL_TRANSITIVE"
    reg, _ = registry(get_compatibility=error(404, 40408, "no config"))
    assert reg.compatibility("u-value") is None


def test_auth_failures_name_the_setting():
    reg, _ = registry(get_schema=error(401, 401, "Unauthorized"))
    with pytest.raises(ConfigError, match="HTTP 401.*BASIC_AUTH_USER_INFO"):
        reg.schema_for(1)
    with pytest.raises(ConfigError, match="'user:password'"):
        basic_auth("no-colon")
    assert basic_auth("murmur:s3cr:et") == ("murmur", "s3cr:et")


def test_unreachable_registry_is_service_unavailable():
    reg, _ = registry(register_schema=ConnectionRefusedError("connection refused"))
    with pytest.raises(ServiceUnavailable, match="registering Post under t-value: ConnectionRefusedError"):
        reg.id_for("t-value", POST)


def test_settings_become_the_clients_configuration(tmp_path):
    with pytest.raises(ConfigError, match="is not a file"):
        SchemaRegistry.from_settings(Settings(schema_registry_url="https://r", schema_registry_ssl_ca=tmp_path / "none.pem"))
    s = Settings(schema_registry_url="https://r", schema_registry_basic_auth_user_info="u:p")
    assert s.schema_registry_compatibility == "FULL_TRANSITIVE" and s.schema_registry_subject_strategy == "topic"
    assert "u:p" not in repr(s)  # a SecretStr
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    assert client_conf("https://r/", auth=("u", "p"), ssl_ca=ca) == {
        "url": "https://r", "timeout": 10.0, "basic.auth.user.info": "u:p", "ssl.ca.location": str(ca)}
    reg = SchemaRegistry.from_settings(s)  # Confluent's client accepts the configuration as built
    assert reg._compatibility == "FULL_TRANSITIVE"
    reg.close()
