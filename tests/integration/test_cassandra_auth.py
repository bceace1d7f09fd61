"""Cassandra's login settings against a real node with PasswordAuthenticator:
a node of this module's own (settings.services.cassandra_password_auth, its
own state dir and ports), so the shared node the other tests use stays open.

TLS (client_encryption_options) is not started here: it needs a keystore per
node; the TLS context Murmur hands the driver is unit-tested
(tests/unit/streams/test_security_settings.py).
"""

from __future__ import annotations

import pytest

from deploy import local
from sinks.cassandra_store import CassandraStore
from streams.errors import ServiceUnavailable
from streams.settings import Settings
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def secured(tmp_path_factory) -> Settings:
    base = Settings()
    s = Settings(state_dir=tmp_path_factory.mktemp("cassandra-auth"),
                 services=base.services.model_copy(update={
                     "cassandra_cql_port": free_port(), "cassandra_storage_port": free_port(),
                     "cassandra_heap_mb": 512, "cassandra_password_auth": True}))
    log = lambda m: print(m, flush=True)  # noqa: E731
    local.up(s, ("cassandra",), log=log)  # fails the module loudly if the node cannot start
    yield s
    local.down(s, ("cassandra",), log=log)


def login(s: Settings, user: str | None, password: str | None) -> Settings:
    return Settings(state_dir=s.state_dir, services=s.services, cassandra_keyspace="murmur_auth",
                    cassandra_username=user, cassandra_password=password)


def test_the_store_works_with_the_login(secured):
    store = CassandraStore(login(secured, "cassandra", "cassandra"))
    try:
        store.apply_schema()
        release = store.connect().execute("SELECT release_version FROM system.local").one().release_version
        assert release.startswith("5.")
        users = [r.role for r in store.connect().execute("SELECT role FROM system_auth.roles")]
        assert "cassandra" in users  # PasswordAuthenticator really is on: roles exist
    finally:
        store.close()


@pytest.mark.parametrize("user, password", [("cassandra", "wrong"), (None, None)])
def test_a_refused_login_names_the_settings(secured, user, password):
    store = CassandraStore(login(secured, user, password))
    with pytest.raises(ServiceUnavailable) as info:
        store.connect()
    message = str(info.value)
    assert "refused the login" in message and "MURMUR_CASSANDRA_PASSWORD" in message, message
    # the node's own reason: bad credentials, or credentials required and none sent
    assert ("Bad credentials" if user else "requires authentication") in message, message
