"""The HTTP API against its own OpenAPI spec (schemathesis), on the real
read model: whatever the generated request, no 5xx, documented status codes,
responses that match their schemas; and hand-picked bad requests."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from api.app import create_app
from tests.fuzzing import examples
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance, \
    status_code_conformance

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(live, tmp_path_factory):
    app = create_app(live.model_copy(update={"qdrant_path": tmp_path_factory.mktemp("qdrant-contract")}),
                     run_qdrant_sink=False)
    with TestClient(app) as client:  # runs the lifespan: stores are opened
        yield app, client


def operations(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    # The SSE stream never ends by design: tests/integration/test_monitor.py covers it.
    return [op for op in (result.ok() for result in schema.get_all_operations()) if not op.path.endswith("/stream")]


# Per operation: 25 in CI; the fuzz profile's 10,000 in the long run (make
# fuzz), for every operation, body or not: about 10 ms an example in process
# (20 ms for the POST bodies), so some 25 minutes for the 14 operations.
EXAMPLES = examples(25)


@pytest.mark.fuzz
def test_api_matches_its_openapi_spec(api):
    # Driven through Hypothesis directly (schemathesis' pytest plugin does not
    # load under this pytest version); same generation, same checks.
    from hypothesis import given

    ops = operations(api[0])
    assert len(ops) >= 11
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    for op in ops:
        @given(case=op.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case):
            case.call_and_validate(checks=checks)

        run()


@pytest.mark.parametrize("method,path,kwargs,status", [
    ("get", "/simulations/nope/agents/nobody/memories", {}, 404),
    ("get", "/simulations/nope/verdict", {}, 404),
    ("get", "/simulations/x/timeline", {"params": {"limit": 10**9}}, 422),
    ("get", "/simulations/x/timeline", {"params": {"before": 10**30}}, 422),
    ("get", "/simulations/x'; DROP TABLE murmur.memories_by_agent; --/timeline", {}, 200),
    ("get", "/simulations/" + "x" * 500 + "/timeline", {}, 422),
    ("get", "/simulations/" + "x" * 500 + "/stream", {}, 422),
    ("get", "/simulations/" + "x" * 500 + "/monitor", {}, 422),
    ("post", "/simulations/x/agents/a/retrieve", {"json": {"query": "q", "top_k": 10**6}}, 422),
    ("post", "/simulations/x/agents/a/retrieve", {"content": b'{"query": "q", "weights": {"relevance": 1e999}}',
                                                   "headers": {"content-type": "application/json"}}, 422),
    ("post", "/simulations/x/agents/a/retrieve", {"json": {"query": "q", "extra": 1}}, 422),
    ("post", "/simulations/x/agents/a/retrieve", {"content": b"{" * 10, "headers": {"content-type": "application/json"}}, 422),
    ("post", "/simulations/x/agents/a/retrieve", {"content": b"x" * (2 << 20), "headers": {"content-type": "application/json"}}, 413),
])
def test_bad_requests_are_clear_4xx(api, method, path, kwargs, status):
    resp = getattr(api[1], method)(path, **kwargs)
    assert resp.status_code == status, resp.text[:300]
    if status >= 400:
        assert resp.json()["detail"]
