"""Real Kafka + Cassandra started by deploy.local (or reused if running).

The services are deliberately left running at the end: the other
integration tests share them. First run fetches jars (~20 s cold) and boots
both JVMs (~10 s); later runs reuse the running services.
"""

from __future__ import annotations

import time
import uuid

import pytest

from deploy import local
from streams.settings import Settings

from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile  # noqa: E402
from cassandra.policies import RoundRobinPolicy  # noqa: E402
from confluent_kafka import Consumer, Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

pytestmark = pytest.mark.integration

# No skip when java or mvn is missing: local.up raises JavaMissing/MavenMissing
# with what to install, and the test fails loudly.


@pytest.fixture(scope="module")
def settings() -> Settings:
    s = Settings()
    local.up(s)  # starts what is not running; no-op otherwise
    return s


def _bootstrap(s: Settings) -> str:
    return f"127.0.0.1:{s.services.kafka_port}"


def _quiet(conf: dict) -> dict:
    # librdkafka prints connect errors to stderr while a broker restarts.
    return {**conf, "log_level": 3}


def _roundtrip_value(s: Settings, topic: str, value: bytes) -> None:
    p = Producer(_quiet({"bootstrap.servers": _bootstrap(s)}))
    p.produce(topic, value=value)
    assert p.flush(30) == 0


def _read_all(s: Settings, topic: str, timeout: float = 30.0) -> list[bytes]:
    c = Consumer(_quiet({"bootstrap.servers": _bootstrap(s), "group.id": f"deploy-test-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False}))
    c.subscribe([topic])
    seen: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            msg = c.poll(1.0)
            if msg is None:
                if seen:
                    break
                continue
            if msg.error() is None:
                seen.append(msg.value())
    finally:
        c.close()
    return seen


def test_both_running_and_healthy(settings: Settings) -> None:
    st = local.status(settings)
    for name in local.SERVICES:
        assert st[name]["running"], st[name]
        assert st[name]["healthy"], st[name]
        assert isinstance(st[name]["pid"], int)
    assert st["kafka"]["port"] == settings.services.kafka_port
    assert st["cassandra"]["port"] == settings.services.cassandra_cql_port


def test_up_again_is_noop(settings: Settings) -> None:
    before = {n: e["pid"] for n, e in local.status(settings).items()}
    t = time.monotonic()
    result = local.up(settings, log=lambda _m: None)
    assert time.monotonic() - t < 30
    assert all(v.startswith("already running") for v in result.values()), result
    assert {n: e["pid"] for n, e in local.status(settings).items()} == before


def test_kafka_answers_metadata_and_roundtrips(settings: Settings) -> None:
    admin = AdminClient(_quiet({"bootstrap.servers": _bootstrap(settings)}))
    md = admin.list_topics(timeout=10)
    assert len(md.brokers) == 1
    topic = f"deploy-smoke-{uuid.uuid4().hex[:8]}"
    for fut in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
        fut.result(30)
    _roundtrip_value(settings, topic, b"hello")
    assert _read_all(settings, topic) == [b"hello"]
    admin.delete_topics([topic])  # keep the shared broker tidy across runs


def test_cassandra_answers_cql(settings: Settings) -> None:
    profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy())
    cluster = Cluster(["127.0.0.1"], port=settings.services.cassandra_cql_port, protocol_version=5,
                      execution_profiles={EXEC_PROFILE_DEFAULT: profile})
    try:
        session = cluster.connect()
        assert session.execute("SELECT release_version FROM system.local").one().release_version.startswith(
            settings.services.cassandra_version.split(".")[0])
        session.execute("CREATE KEYSPACE IF NOT EXISTS deploy_test WITH replication = "
                        "{'class': 'SimpleStrategy', 'replication_factor': 1}")
        session.execute("CREATE TABLE IF NOT EXISTS deploy_test.kv (k text PRIMARY KEY, v int)")
        key = uuid.uuid4().hex
        session.execute("INSERT INTO deploy_test.kv (k, v) VALUES (%s, %s)", (key, 42))
        assert session.execute("SELECT v FROM deploy_test.kv WHERE k = %s", (key,)).one().v == 42
    finally:
        cluster.shutdown()


def test_restart_kafka_keeps_data(settings: Settings) -> None:
    topic = f"deploy-restart-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(_quiet({"bootstrap.servers": _bootstrap(settings)}))
    for fut in admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)]).values():
        fut.result(30)
    _roundtrip_value(settings, topic, b"before-restart")
    del admin
    old_pid = local.status(settings, ("kafka",))["kafka"]["pid"]

    local.restart(settings, "kafka", log=lambda _m: None)

    st = local.status(settings, ("kafka",))["kafka"]
    assert st["running"] and st["healthy"], st
    assert st["pid"] != old_pid
    admin = AdminClient(_quiet({"bootstrap.servers": _bootstrap(settings)}))
    assert topic in admin.list_topics(timeout=10).topics
    assert _read_all(settings, topic) == [b"before-restart"]
    admin.delete_topics([topic])
