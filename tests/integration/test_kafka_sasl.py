"""Kafka security settings against a real SASL/PLAIN listener: the local
broker's second listener (settings.services.kafka_sasl_port, deploy/kafka.py).

The confluent-kafka clients, Faust's aiokafka clients (a whole worker) and
the CLI all go through MURMUR_KAFKA_SECURITY_PROTOCOL and its credentials;
a wrong password is one clear error line, not a traceback or a hang.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from connectors.publish_cli import Options, run_publish
from deploy.kafka import Kafka
from deploy.pipeline import EXAMPLE
from streams.kafka import admin, create_topics, make_consumer, make_producer
from streams.settings import Settings
from tests.integration.conftest import start_worker, wait_for
from deploy.pipeline import stop_process
from sinks.cassandra_store import CassandraStore

pytestmark = pytest.mark.integration


def sasl_env(live: Settings, password: str | None = None) -> dict[str, str]:
    user, real = Kafka(live).sasl_credentials()
    return {
        "MURMUR_KAFKA_BOOTSTRAP": f"127.0.0.1:{live.services.kafka_sasl_port}",
        "MURMUR_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "MURMUR_KAFKA_SASL_MECHANISM": "PLAIN",
        "MURMUR_KAFKA_SASL_USERNAME": user,
        "MURMUR_KAFKA_SASL_PASSWORD": real if password is None else password,
    }


def sasl_settings(live: Settings, **update) -> Settings:
    env = sasl_env(live)
    return Settings(
        state_dir=live.state_dir, qdrant_path=live.qdrant_path,
        kafka_bootstrap=env["MURMUR_KAFKA_BOOTSTRAP"], kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_username=env["MURMUR_KAFKA_SASL_USERNAME"], kafka_sasl_password=env["MURMUR_KAFKA_SASL_PASSWORD"],
        **update)


@pytest.fixture(scope="module")
def sasl_listener(live) -> Settings:
    if not live.services.kafka_sasl_port:
        pytest.fail("MURMUR_SERVICES__KAFKA_SASL_PORT is 0: the local broker has no SASL listener to test")
    s = sasl_settings(live)
    # A broker started before the listener existed would refuse the port: say how to fix it.
    try:
        admin(s).list_topics(timeout=15)
    except Exception as exc:
        pytest.fail(f"no SASL listener on {s.kafka_bootstrap} ({exc}); a broker started by an older "
                    "Murmur lacks it: `murmur services down kafka && murmur services up`")
    return s


def test_confluent_clients_produce_and_consume_through_sasl(sasl_listener):
    topic = f"it-sasl-{uuid.uuid4().hex[:8]}"
    from confluent_kafka.admin import NewTopic

    client = admin(sasl_listener)  # kept: a collected client cancels its futures
    client.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    producer = make_producer(sasl_listener)
    producer.produce(topic, key=b"k", value=b"through SASL")
    assert producer.flush(30) == 0
    consumer = make_consumer(sasl_listener)
    consumer.subscribe([topic])
    try:
        got = None
        for _ in range(60):
            msg = consumer.poll(1.0)
            if msg is not None and not msg.error():
                got = msg
                break
        assert got is not None and got.key() == b"k" and got.value() == b"through SASL"
    finally:
        consumer.close()


def test_wrong_password_is_one_clean_error(live, sasl_listener):
    env = {**os.environ, **sasl_env(live, password="not-the-password")}
    res = subprocess.run([sys.executable, "-m", "streams.cli", "lag"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    assert "Traceback" not in res.stderr and "%" not in res.stderr, res.stderr  # no librdkafka log lines
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "error:" in lines[0], res.stderr
    assert "Authentication failed" in lines[0] or "SASL" in lines[0], lines[0]


def test_a_worker_runs_whole_over_sasl(live, sasl_listener, sim_id):
    """Faust's aiokafka consumer, producer and admin client, and the sinks'
    confluent-kafka clients, all through the SASL listener."""
    worker = start_worker(live, **sasl_env(live))
    store = CassandraStore(worker.settings)
    try:
        publisher = sasl_settings(live)
        counts = run_publish(publisher, [EXAMPLE], Options(sim=sim_id)).counts
        posts, observations = counts.published["Post"], counts.published["Observation"]
        assert posts > 50
        wait_for(lambda: store.count_memories(sim_id, kinds=("post", "observation")) == posts + observations,
                 timeout=180, what="the example in Cassandra through a SASL worker", worker=worker)
    finally:
        store.close()
        stop_process(live, worker.name)
