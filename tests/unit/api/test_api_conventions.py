"""HTTP conventions that need no database: RFC 9457 errors, the body limit
(chunked bodies included), CORS, and the docs with an API key configured."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import MAX_BODY_BYTES, create_app
from api.auth import hash_key
from streams.settings import Settings


def make_client(tmp_path, **overrides) -> TestClient:
    settings = Settings(qdrant_path=tmp_path / "q", cassandra_port=1, kafka_bootstrap="127.0.0.1:1", **overrides)
    return TestClient(create_app(settings, run_qdrant_sink=False))


@pytest.fixture
def client(tmp_path):
    with make_client(tmp_path) as c:
        yield c


def is_problem(resp, status: int) -> dict:
    assert resp.status_code == status, resp.text[:300]
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["status"] == status and body["type"] == "about:blank" and body["title"] and body["detail"]
    return body


def chunks(total: int, size: int = 64 << 10):
    sent = 0
    while sent < total:
        yield b"x" * min(size, total - sent)
        sent += size


def test_a_chunked_body_over_the_limit_is_refused_while_it_arrives(client):
    body = is_problem(client.post("/simulations/s/agents/a/retrieve", content=chunks(5 << 20),
                                  headers={"content-type": "application/json"}), 413)
    assert str(MAX_BODY_BYTES) in body["detail"]
    # The same with Content-Length is refused before anything is read.
    is_problem(client.post("/simulations/s/agents/a/retrieve", content=b"x" * (MAX_BODY_BYTES + 1),
                           headers={"content-type": "application/json"}), 413)


def test_a_chunked_body_under_the_limit_goes_through(client):
    # Read in full and parsed: the invalid JSON is what is refused, not the size.
    body = is_problem(client.post("/simulations/s/agents/a/retrieve", content=chunks(200 << 10),
                                  headers={"content-type": "application/json"}), 422)
    assert body["errors"] and body["errors"][0]["loc"][0] == "body"


def test_errors_are_problem_details(client):
    body = is_problem(client.get("/simulations/s/timeline", params={"limit": 0}), 422)
    assert body["instance"] == "/simulations/s/timeline"
    assert body["errors"][0]["loc"] == ["query", "limit"] and "limit" in body["detail"]
    is_problem(client.get("/no/such/route"), 404)
    is_problem(client.get("/simulations/s/timeline"), 503)  # no Cassandra here


def test_the_spec_documents_errors_as_problems_and_the_key_schemes(client):
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/simulations/{sim}/timeline"]["get"]
    assert set(op["responses"]["422"]["content"]) == {"application/problem+json"}
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert set(spec["components"]["securitySchemes"]) == {"ApiKey", "Bearer"}
    assert "security" not in op  # no key configured: nothing required
    health = spec["paths"]["/health"]["get"]["responses"]["503"]["content"]
    assert health["application/json"]["schema"]["$ref"].endswith("/Health")  # its own report, not a problem


def test_with_a_key_the_docs_stay_reachable_and_say_what_needs_it(tmp_path):
    with make_client(tmp_path, api_key_sha256=hash_key("s3cret")) as c:
        assert c.get("/docs").status_code == 200
        spec = c.get("/openapi.json").json()
        assert spec["paths"]["/simulations/{sim}/timeline"]["get"]["security"] == [{"ApiKey": []}, {"Bearer": []}]
        assert spec["paths"]["/health"]["get"]["security"] == []
        assert spec["paths"]["/simulations/{sim}/monitor"]["get"]["security"] == []
        is_problem(c.get("/simulations/s/timeline"), 401)


def test_cors_preflight_answers_the_configured_origins_only(tmp_path):
    ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-api-key,content-type"}
    with make_client(tmp_path / "on", api_cors_origins=("http://localhost:5173",),
                     api_key_sha256=hash_key("s3cret")) as c:
        ok = c.options("/simulations/s/context", headers={"Origin": "http://localhost:5173", **ask})
        assert ok.status_code == 200  # before the key check: a preflight carries no key
        assert ok.headers["access-control-allow-origin"] == "http://localhost:5173"
        assert "x-api-key" in ok.headers["access-control-allow-headers"].lower()
        other = c.options("/simulations/s/context", headers={"Origin": "http://evil.example", **ask})
        assert "access-control-allow-origin" not in other.headers
        got = c.get("/health", headers={"Origin": "http://localhost:5173"})
        assert got.headers["access-control-allow-origin"] == "http://localhost:5173"
    with make_client(tmp_path / "off") as c:  # not configured: no CORS headers at all
        r = c.options("/simulations/s/context", headers={"Origin": "http://localhost:5173", **ask})
        assert "access-control-allow-origin" not in r.headers
