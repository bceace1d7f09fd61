"""The API key check runs before any query, so these need no database."""

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import hash_key
from streams.settings import Settings


@pytest.fixture
def client(tmp_path):
    settings = Settings(api_key_sha256=hash_key("s3cret"), qdrant_path=tmp_path / "q",
                        cassandra_port=1, kafka_bootstrap="127.0.0.1:1")
    with TestClient(create_app(settings, run_qdrant_sink=False)) as c:
        yield c


@pytest.mark.parametrize("path", ["/simulations/s/timeline", "/simulations/s/agents", "/eval/results", "/metrics"])
def test_requests_without_the_key_get_401(client, path):
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_the_key_opens_the_door_and_health_is_open(client):
    # Past the key check the query meets the (absent) database: 503, not 401.
    assert client.get("/simulations/s/timeline", headers={"X-API-Key": "s3cret"}).status_code == 503
    assert client.get("/simulations/s/timeline", headers={"Authorization": "Bearer s3cret"}).status_code == 503
    assert client.get("/metrics", headers={"X-API-Key": "s3cret"}).status_code == 200
    assert client.get("/health").status_code in (200, 503)  # open: reports dependencies


def test_only_the_hash_is_configured():
    assert hash_key("s3cret") != "s3cret" and len(hash_key("s3cret")) == 64
