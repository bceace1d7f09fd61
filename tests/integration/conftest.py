"""Integration tests run against the real Kafka and Cassandra that
`deploy.local` starts (or reuses when already running). If they cannot be
started the session fails loudly: nothing is skipped."""

from __future__ import annotations

import time
import uuid
from typing import Callable

import pytest

from deploy import local
from deploy.pipeline import process_log, start_process, stop_process
from deploy import jvm
from sinks.cassandra_store import CassandraStore
from streams.kafka import create_topics
from streams.settings import Settings, get_settings


@pytest.fixture(scope="session")
def live(tmp_path_factory) -> Settings:
    # Local Qdrant admits one process per folder: the tests' API instances get
    # their own, so a `murmur demo` API left running does not block them.
    settings = get_settings().model_copy(update={"qdrant_path": tmp_path_factory.mktemp("qdrant")})
    local.up(settings, log=lambda m: print(m, flush=True))
    create_topics(settings)
    store = CassandraStore(settings)
    store.apply_schema()
    store.close()
    return settings


@pytest.fixture(scope="session")
def store(live):
    s = CassandraStore(live)
    yield s
    s.close()


@pytest.fixture(scope="session")
def worker(live):
    """One Faust worker running every processor, as `murmur worker` does."""
    pid = start_process(live, "test-worker", ["worker", "--processors", "all"])
    yield pid
    stop_process(live, "test-worker")


@pytest.fixture
def sim_id() -> str:
    return f"it-{uuid.uuid4().hex[:10]}"


def wait_for(predicate: Callable[[], bool], *, timeout: float, what: str, settings: Settings | None = None,
             pid: int | None = None) -> float:
    started = time.monotonic()
    while True:
        try:
            if predicate():
                return time.monotonic() - started
        except Exception:  # a query against a service that is catching up
            pass
        if pid is not None and settings is not None and not jvm.alive(pid):
            pytest.fail(f"worker died while waiting for {what}:\n{process_log(settings, 'test-worker', 60)}")
        if time.monotonic() - started > timeout:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.5)
