"""Issued API keys and their limits against the real Cassandra: a key
issued with the CLI opens the API, shows in the list, and is refused once
revoked (after the cache TTL); rates and quotas answer 429 with
Retry-After and RateLimit headers, a rate recovers, a batch counts one per
agent, and a quota outlives the API process that counted it."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.keys import KeyTable, hash_key
from sinks.cassandra_store import CassandraStore

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
TS = 1_800_000_000_000
TTL_S = 0.5
OPERATOR = "operator-s3cret"


def memory(sim: str, i: int, agent: str) -> dict:
    return {"memory_id": f"m{i:03d}", "sim_id": sim, "agent_id": agent, "kind": "post", "public": True,
            "importance": 5, "round": 0, "ts": TS + i, "content": f"the council votes on the budget {i}",
            "embedding_f32": None, "embedding": [], "action": "CREATE_POST", "platform": "reddit",
            "importance_fallback": False, "scorer": "test", "embedder": "none", "source_topic": "test",
            "source_partition": 0, "source_offset": i}


@pytest.fixture(scope="module")
def keyed(live, tmp_path_factory):
    """Settings of a keyspace of the module's own, with keys required, the
    operator's key set, no default limits and a short key cache."""
    settings = live.model_copy(update={
        "namespace": f"keys{uuid.uuid4().hex[:8]}", "api_require_key": True, "api_key_sha256": hash_key(OPERATOR),
        "api_key_cache_s": TTL_S, "api_key_rate": None, "api_key_quota": None,
        "qdrant_path": tmp_path_factory.mktemp("q-keys")})
    db = CassandraStore(settings)
    db.apply_schema()
    sim = "town-hall"
    for stmt, params in db.memory_writes([memory(sim, i, f"a{i % 3}") for i in range(9)]):
        db.connect().execute(stmt, params)
    yield settings, sim, KeyTable(db)
    db.close()


@pytest.fixture(scope="module")
def api(keyed):
    settings, sim, table = keyed
    with TestClient(create_app(settings, run_qdrant_sink=False)) as client:
        yield client, sim, table


def murmur(settings, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MURMUR_NAMESPACE": settings.namespace, "MURMUR_API_KEY_CACHE_S": str(TTL_S)}
    return subprocess.run([str(ROOT / ".venv" / "bin" / "murmur"), "api-keys", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def context(client, sim, key, agent="a0"):
    return client.get(f"/simulations/{sim}/agents/{agent}/context", params={"query": "the budget vote"},
                      headers={"X-API-Key": key} if key else {})


def batch(client, sim, key, n):
    body = {"agents": [{"agent_id": f"a{i % 3}", "query": "the budget vote"} for i in range(n)]}
    return client.post(f"/simulations/{sim}/context", json=body, headers={"X-API-Key": key})


def is_429(resp, limit: int) -> dict:
    assert resp.status_code == 429, resp.text[:300]
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert int(resp.headers["retry-after"]) >= 1 and resp.headers["ratelimit-remaining"].isdigit()
    assert resp.headers["ratelimit-limit"] == str(limit) and int(resp.headers["ratelimit-reset"]) >= 1
    return resp.json()


def test_a_key_issued_with_the_cli_works_is_listed_and_is_refused_once_revoked(api, keyed):
    client, sim, _ = api
    settings = keyed[0]
    issued = murmur(settings, "issue", "--name", "sim-runner")
    assert issued.returncode == 0, issued.stderr
    key = issued.stdout.strip()
    key_id = key.split("_")[1]
    assert context(client, sim, key).status_code == 200
    assert client.get(f"/simulations/{sim}/agents", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert context(client, sim, None).status_code == 401
    assert context(client, sim, key[:-1] + ("A" if key[-1] != "A" else "B")).status_code == 401  # same id, wrong secret

    listed = murmur(settings, "list")
    assert listed.returncode == 0 and key_id in listed.stdout and "sim-runner" in listed.stdout
    assert key.split("_", 2)[2] not in listed.stdout and hash_key(key) not in listed.stdout

    revoked = murmur(settings, "revoke", key_id)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout, revoked.stderr
    time.sleep(TTL_S + 0.1)
    resp = context(client, sim, key)
    assert resp.status_code == 401 and "revoked" in resp.json()["detail"]
    assert murmur(settings, "revoke", "000000000000").returncode == 1


def test_the_operator_key_is_not_limited(api):
    client, sim, _ = api
    for _ in range(5):
        resp = context(client, sim, OPERATOR)
        assert resp.status_code == 200 and "ratelimit-limit" not in resp.headers


def test_a_rate_limit_answers_429_with_headers_then_recovers(api):
    client, sim, table = api
    _, key = table.issue("bursty", rate="3/second")
    remaining = []
    for _ in range(3):
        resp = context(client, sim, key)
        assert resp.status_code == 200
        assert resp.headers["ratelimit-limit"] == "3" and resp.headers["ratelimit-policy"] == "3;w=1"
        remaining.append(int(resp.headers["ratelimit-remaining"]))
    assert remaining == [2, 1, 0]
    body = is_429(context(client, sim, key), 3)
    assert body["status"] == 429 and "rate limit" in body["detail"]
    time.sleep(int(context(client, sim, key).headers["retry-after"]) + 0.05)
    assert context(client, sim, key).status_code == 200  # the window moved on
    # Cheap reads are not limited.
    assert all(client.get(f"/simulations/{sim}/agents", headers={"X-API-Key": key}).status_code == 200 for _ in range(5))


def test_a_quota_counts_a_batch_per_agent_and_outlives_the_process(api, keyed, tmp_path):
    client, sim, table = api
    _, key = table.issue("metered", rate="none", quota="5/day")
    resp = batch(client, sim, key, 3)
    assert resp.status_code == 200 and len(resp.json()["contexts"]) == 3
    assert resp.headers["ratelimit-limit"] == "5" and resp.headers["ratelimit-remaining"] == "2"
    body = is_429(batch(client, sim, key, 3), 5)  # 3 more would make 6
    assert "counts 3" in body["detail"]
    ok = context(client, sim, key)  # the refused batch was given back: 1 still fits
    assert ok.status_code == 200 and ok.headers["ratelimit-remaining"] == "1"
    assert "never fit" in is_429(batch(client, sim, key, 6), 5)["detail"]

    # Another API process (a restart, a replica) sees the same use.
    settings = keyed[0].model_copy(update={"qdrant_path": tmp_path / "q"})
    with TestClient(create_app(settings, run_qdrant_sink=False)) as other:
        assert context(other, sim, key).headers["ratelimit-remaining"] == "0"
        assert "quota" in is_429(context(other, sim, key), 5)["detail"]


def test_a_key_limited_to_some_simulations_gets_403_elsewhere(api):
    client, sim, table = api
    _, key = table.issue("one-sim", sims=frozenset({sim}))
    assert client.get(f"/simulations/{sim}/agents", headers={"X-API-Key": key}).status_code == 200
    resp = client.get("/simulations/elsewhere/agents", headers={"X-API-Key": key})
    assert resp.status_code == 403 and sim in resp.json()["detail"]
    assert client.get("/eval/results", headers={"X-API-Key": key}).status_code == 403
