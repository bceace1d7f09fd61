"""The vector store contract against a real Qdrant server, the one
``murmur services up qdrant`` runs (deploy/qdrant.py), plus the facade's
promises for it: healthy with its version, data kept across down/up.

If the server cannot be fetched or started, local.up raises (NpmMissing,
ChecksumMismatch, PortInUse, StartTimeout...) and every test here fails:
nothing is skipped. A server this module started is stopped at its end; one
that was already running is left running.
"""

from __future__ import annotations

import hashlib
import uuid

import numpy as np
import pytest
from qdrant_client import QdrantClient
from typer.testing import CliRunner

from deploy import local
from sinks.qdrant_store import QdrantStore
from streams.settings import Settings
from tests.unit.sinks.test_vector_store_contract import DIM, WORLD, VectorStoreContract

pytestmark = [
    pytest.mark.integration,
    # qdrant-client 1.20 warns (from a background thread) that it is more than
    # one minor version ahead of server 1.16.3, the newest binary we can get;
    # this contract suite is what shows the calls Murmur makes work against it.
    pytest.mark.filterwarnings("ignore:Qdrant client version .* is incompatible:UserWarning"),
    # That check's thread can outlive its client and meet the server stopped
    # on purpose by the down/up test.
    pytest.mark.filterwarnings("ignore:Failed to obtain server version:UserWarning"),
    # The key crosses loopback only; the warning is for https in production (docs/operations.md).
    pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection:UserWarning"),
]

RUN = uuid.uuid4().hex[:8]  # collections of this session: no clash with a previous, aborted run


KEY = f"test-key-{RUN}"  # the server requires it (MURMUR_QDRANT_API_KEY): the store must send it


def server_settings() -> Settings:
    s = Settings(qdrant_api_key=KEY)
    return s.model_copy(update={"qdrant_url": f"http://127.0.0.1:{s.services.qdrant_http_port}"})


@pytest.fixture(scope="module", autouse=True)
def qdrant_server():
    s = server_settings()
    log = lambda m: print(m, flush=True)  # noqa: E731
    was_running = local.status(s, ("qdrant",))["qdrant"]["running"]
    if was_running:  # started without this run's key: restart it with the key
        local.down(s, ("qdrant",), log=log)
    local.up(s, ("qdrant",), log=log)
    yield s
    local.down(s, ("qdrant",), log=log)
    if was_running:
        local.up(Settings(), ("qdrant",), log=log)


def collection_for(path) -> str:
    # The contract opens a folder; here the folder names the collection, so
    # each test has its own and reopening the same folder finds the same one.
    return f"contract_{RUN}_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"


def drop(settings: Settings, collection: str) -> None:
    client = QdrantClient(url=settings.qdrant_url, api_key=KEY, timeout=10, check_compatibility=False)
    try:
        client.delete_collection(collection)
    finally:
        client.close()


class TestQdrantServer(VectorStoreContract):
    def open(self, path):
        return QdrantStore(server_settings(), dim=DIM, collection=collection_for(path))

    @pytest.fixture(autouse=True)
    def _drop_after(self, qdrant_server, tmp_path):
        yield
        drop(qdrant_server, collection_for(tmp_path))  # the server outlives the test; keep it tidy


def test_the_server_refuses_a_client_without_the_key(qdrant_server: Settings) -> None:
    import httpx

    assert httpx.get(f"{qdrant_server.qdrant_url}/collections", timeout=10).status_code == 401
    wrong = httpx.get(f"{qdrant_server.qdrant_url}/collections", headers={"api-key": "nope"}, timeout=10)
    assert wrong.status_code == 401
    store = QdrantStore(qdrant_server.model_copy(update={"qdrant_api_key": None}), dim=DIM,
                        collection=f"nokey_{RUN}")
    with pytest.raises(Exception, match="401|Unauthorized|api key|Must provide"):
        store.client.get_collections()
    assert QdrantStore(qdrant_server, dim=DIM, collection=f"key_{RUN}").client.get_collections() is not None


def test_status_reports_qdrant_healthy_with_its_version(qdrant_server: Settings) -> None:
    st = local.status(qdrant_server, ("qdrant",))["qdrant"]
    assert st["running"] and st["healthy"], st
    assert st["port"] == qdrant_server.services.qdrant_http_port == 16333
    assert st["detail"] == "version 1.16.3 (commit bd49f45a)"
    again = local.up(qdrant_server, ("qdrant",), log=lambda _m: None)
    assert again == {"qdrant": f"already running (pid {st['pid']})"}


def test_cli_services_status_qdrant(qdrant_server: Settings) -> None:
    from streams.cli import app

    out = CliRunner().invoke(app, ["services", "status", "qdrant"])
    assert out.exit_code == 0, out.output
    assert "qdrant: running, healthy" in out.output and "version 1.16.3" in out.output


def test_down_then_up_keeps_the_points(qdrant_server: Settings) -> None:
    collection = f"persist_{RUN}"
    q = list(np.ones(DIM) / np.sqrt(DIM))
    store = QdrantStore(qdrant_server, dim=DIM, collection=collection)
    try:
        store.upsert(WORLD)
        before = store.search(sim_id="s1", agent_id="bob", vector=q, limit=5, include_public=True)
    finally:
        store.close()
    old_pid = local.status(qdrant_server, ("qdrant",))["qdrant"]["pid"]

    stopped = local.down(qdrant_server, ("qdrant",), log=lambda _m: None)
    assert stopped["qdrant"].startswith("stopped"), stopped  # SIGTERM, not a kill
    assert local.status(qdrant_server, ("qdrant",))["qdrant"]["running"] is False
    started = local.up(qdrant_server, ("qdrant",), log=lambda _m: None)
    assert started["qdrant"].startswith("started"), started

    st = local.status(qdrant_server, ("qdrant",))["qdrant"]
    assert st["healthy"] and st["pid"] != old_pid, st
    store = QdrantStore(qdrant_server, dim=DIM, collection=collection)
    try:
        assert store.count() == len(WORLD)
        after = store.search(sim_id="s1", agent_id="bob", vector=q, limit=5, include_public=True)
        assert [p for _, p in after] == [p for _, p in before]
    finally:
        store.close()
        drop(qdrant_server, collection)
