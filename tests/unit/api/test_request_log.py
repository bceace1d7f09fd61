"""One log line per API request (api/request_log.py), with the request id
echoed, and never the key."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from api.app import create_app
from api.auth import hash_key
from api.auth import Caller
from api.keys import ApiKey
from api.request_log import RequestLog, request_id
from streams.settings import Settings
from tests.unit.streams.test_logs import captured  # noqa: F401 (the fixture)


def requests(buf: io.StringIO) -> list[dict]:
    rows = [json.loads(line) for line in buf.getvalue().splitlines()]
    return [r for r in rows if r["logger"] == "api.requests"]


@pytest.fixture
def client(tmp_path):
    settings = Settings(api_key_sha256=hash_key("s3cret"), qdrant_path=tmp_path / "q",
                        cassandra_port=1, kafka_bootstrap="127.0.0.1:1")
    with TestClient(create_app(settings, run_qdrant_sink=False)) as c:
        yield c


def test_a_request_is_logged_once_with_its_id_echoed(client, captured):
    r = client.get("/metrics", headers={"X-API-Key": "s3cret", "X-Request-ID": "trace-42"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "trace-42"
    (line,) = requests(captured)
    assert {k: line[k] for k in ("event", "level", "method", "path", "status", "client", "request_id")} == {
        "event": "request", "level": "info", "method": "GET", "path": "/metrics", "status": 200,
        "client": "testclient", "request_id": "trace-42"}
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0 and "timestamp" in line
    assert "s3cret" not in captured.getvalue()  # the key is never logged


def test_a_refused_request_gets_a_new_id_and_is_logged_too(client, captured):
    r = client.get("/simulations/s/timeline", headers={"X-Request-ID": "bad id\twith spaces"})
    assert r.status_code == 401
    made = r.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)  # an implausible id is replaced, not echoed
    (line,) = requests(captured)
    assert (line["status"], line["request_id"], line["path"]) == (401, made, "/simulations/s/timeline")


def test_the_key_id_set_by_the_key_check_is_logged(captured):
    async def hello(request):
        return PlainTextResponse("hi")

    async def key_check(scope, receive, send):  # what api/app.py's key check leaves for an issued key
        scope.setdefault("state", {})["caller"] = Caller(ApiKey("k-7", "ci", "0" * 64, datetime.now(timezone.utc)))
        await inner(scope, receive, send)

    inner = Starlette(routes=[Route("/", hello)])
    with TestClient(RequestLog(key_check)) as c:
        assert c.get("/").text == "hi"
    (line,) = requests(captured)
    assert line["api_key_id"] == "k-7" and line["status"] == 200


def test_request_ids_taken_from_the_header_only_when_plausible():
    assert request_id([(b"X-Request-ID", b"abc-123:4/5")]) == "abc-123:4/5"
    assert request_id([(b"x-request-id", b"a" * 129)]) != "a" * 129
    assert len(request_id([])) == 32
