"""The registry client's requests and its reading of the answers, against
Confluent's documented REST API (v1) replayed by an httpx MockTransport: what
is checked here is what Murmur sends and how it reads status codes."""

import base64
import json

import httpx
import pytest

from streams.errors import ConfigError, SchemaRejected, ServiceUnavailable, UnknownSchemaId
from streams.schema_registry import CONTENT_TYPE, SchemaRegistry, basic_auth
from streams.serde import current_schemas
from streams.settings import Settings

POST = current_schemas()["Post"].raw


class Recorder:
    def __init__(self, answers):
        self.answers, self.seen = answers, []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.seen.append((request.method, request.url.raw_path.decode(), body, request.headers))
        status, payload = self.answers[(request.method, request.url.raw_path.decode())]
        return httpx.Response(status, json=payload)


def registry(answers, **kw):
    rec = Recorder(answers)
    return SchemaRegistry("http://registry:8081/", transport=httpx.MockTransport(rec), **kw), rec


def test_first_registration_sets_compatibility_then_registers_once():
    reg, rec = registry({
        ("PUT", "/config/sim.agent-log.v1-value"): (200, {"compatibility": "FULL_TRANSITIVE"}),
        ("POST", "/subjects/sim.agent-log.v1-value/versions"): (200, {"id": 17}),
    }, compatibility="FULL_TRANSITIVE")
    assert reg.id_for("sim.agent-log.v1-value", POST) == 17
    assert reg.id_for("sim.agent-log.v1-value", POST) == 17  # cached
    assert [(m, p) for m, p, _, _ in rec.seen] == [
        ("PUT", "/config/sim.agent-log.v1-value"), ("POST", "/subjects/sim.agent-log.v1-value/versions")]
    put, post = rec.seen
    assert put[2] == {"compatibility": "FULL_TRANSITIVE"}
    assert json.loads(post[2]["schema"]) == POST and post[3]["content-type"] == CONTENT_TYPE
    assert reg.schema_for(17) == POST  # known from the registration: no request
    assert len(rec.seen) == 2


def test_subject_is_url_quoted():
    reg, rec = registry({("POST", "/subjects/a%2Fb-value/versions"): (200, {"id": 1})})
    assert reg.id_for("a/b-value", POST) == 1


def test_incompatible_and_invalid_schemas_are_refused_clearly():
    reg, _ = registry({("POST", "/subjects/t-value/versions"): (
        409, {"error_code": 409, "message": "Schema being registered is incompatible"})})
    with pytest.raises(SchemaRejected, match="refused Post under subject t-value: incompatible"):
        reg.id_for("t-value", POST)
    reg, _ = registry({("POST", "/subjects/t-value/versions"): (422, {"error_code": 42201, "message": "bad"})})
    with pytest.raises(SchemaRejected, match="invalid schema"):
        reg.id_for("t-value", POST)


def test_unknown_id_and_lookup():
    reg, _ = registry({
        ("GET", "/schemas/ids/9"): (404, {"error_code": 40403, "message": "Schema 9 not found"}),
        ("GET", "/schemas/ids/3"): (200, {"schema": json.dumps(POST)}),
    })
    with pytest.raises(UnknownSchemaId, match="schema id 9 is not in the schema registry http://registry:8081"):
        reg.schema_for(9)
    assert reg.schema_for(3) == POST


def test_compatibility_read_back():
    reg, _ = registry({
        ("GET", "/config/t-value"): (200, {"compatibilityLevel": "FULL_TRANSITIVE"}),
        ("GET", "/config/u-value"): (404, {"error_code": 40408, "message": "no config"}),
    })
    assert reg.compatibility("t-value") == "FULL_TRANSITIVE"
    assert reg.compatibility("u-value") is None


def test_basic_auth_header_and_auth_failures():
    reg, rec = registry({("GET", "/schemas/ids/1"): (401, {"error_code": 401, "message": "Unauthorized"})},
                        auth=basic_auth("murmur:s3cr:et"))
    with pytest.raises(ConfigError, match="HTTP 401.*BASIC_AUTH_USER_INFO"):
        reg.schema_for(1)
    assert rec.seen[0][3]["authorization"] == "Basic " + base64.b64encode(b"murmur:s3cr:et").decode()
    with pytest.raises(ConfigError, match="'user:password'"):
        basic_auth("no-colon")


def test_unreachable_registry_is_service_unavailable():
    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    reg = SchemaRegistry("http://registry:8081", transport=httpx.MockTransport(refuse))
    with pytest.raises(ServiceUnavailable, match="registering Post under t-value: ConnectError"):
        reg.id_for("t-value", POST)


def test_from_settings_reads_auth_ca_and_compatibility(tmp_path):
    with pytest.raises(ConfigError, match="is not a file"):
        SchemaRegistry.from_settings(Settings(schema_registry_url="https://r", schema_registry_ssl_ca=tmp_path / "none.pem"))
    s = Settings(schema_registry_url="https://r", schema_registry_basic_auth_user_info="u:p")
    assert s.schema_registry_compatibility == "FULL_TRANSITIVE" and s.schema_registry_subject_strategy == "topic"
    assert "u:p" not in repr(s)  # a SecretStr
    reg = SchemaRegistry.from_settings(s)
    assert reg._compatibility == "FULL_TRANSITIVE" and reg._http.auth is not None
