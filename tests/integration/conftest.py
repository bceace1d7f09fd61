"""Integration tests run against the real Kafka and Cassandra that
`deploy.local` starts (or reuses when already running). If they cannot be
started the session fails loudly: nothing is skipped."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from typing import Callable

import pytest

from deploy import local
from deploy.pipeline import log_digest, process_log, start_process, stop_process, worker_report
from deploy import jvm
from sinks.cassandra_store import CassandraStore
from streams.topology import input_topics, resolve
from streams.app import group_id
from streams.kafka import create_topics, start_group_at_end
from streams.settings import Settings, get_settings


@pytest.fixture(scope="session")
def live(tmp_path_factory) -> Settings:
    # Local Qdrant admits one process per folder: the tests' API instances get
    # their own, so a `murmur demo` API left running does not block them.
    settings = get_settings().model_copy(update={"qdrant_path": tmp_path_factory.mktemp("qdrant")})
    local.up(settings, log=lambda m: print(m, flush=True))
    # A `make demo` worker left running consumes the shared source topics into
    # the live read model, which tests check stays untouched: stop it.
    stop_process(settings, "worker")
    create_topics(settings)
    store = CassandraStore(settings)
    store.apply_schema()
    store.close()
    return settings


@dataclass
class Worker:
    settings: Settings  # namespaced: the worker's group, derived topics, keyspace
    pid: int
    name: str
    args: list
    env: dict

    def restart(self, live: Settings) -> int:
        """Start it again (after a kill): same namespace, same group."""
        stop_process(live, self.name, timeout=5)
        self.pid = start_process(live, self.name, self.args, env=self.env)
        return self.pid


def start_worker(live: Settings, processors: str = "all", **env: str) -> Worker:
    """A worker in a namespace of its own, starting at the current end of its
    input topics (committed before it starts), so it sees only what the test
    publishes and never another test's or a demo's backlog."""
    ns = f"it{uuid.uuid4().hex[:8]}"
    settings = live.model_copy(update={"namespace": ns})
    create_topics(settings, namespace=ns)
    names = resolve(processors)
    start_group_at_end(settings, group_id(settings, processors), input_topics(settings, names))
    name = f"worker-{ns}"
    args = ["worker", "--processors", processors, "--loglevel", "info"]  # info: the log tells what a stuck worker did
    # Metrics off unless a test asks (workers of one session would race for the port).
    # A killed worker's partitions move after 15 s, not Faust's 60: the faults
    # tests check what arrives, not how long the coordinator waits for the dead.
    # Commits every 0.25 s, not 1 s: the tests wait for drained groups
    # (committed = end) a hundred times a run.
    full_env = {**os.environ, "MURMUR_NAMESPACE": ns, "MURMUR_METRICS_PORT": "0",
                "MURMUR_FAUST_SESSION_TIMEOUT_S": "15", "MURMUR_FAUST_COMMIT_INTERVAL_S": "0.25", **env}
    pid = start_process(live, name, args, env=full_env)
    return Worker(settings, pid, name, args, full_env)


@pytest.fixture(scope="session")
def worker(live):
    """One Faust worker running every processor, as `murmur worker` does."""
    w = start_worker(live)
    yield w
    stop_process(live, w.name)


@pytest.fixture(scope="session")
def store(worker):
    s = CassandraStore(worker.settings)
    yield s
    s.close()


@pytest.fixture
def sim_id() -> str:
    return f"it-{uuid.uuid4().hex[:10]}"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(url: str) -> dict[str, list]:
    """Prometheus metric family -> its samples (the parser strips _total)."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    return {f.name: f.samples for f in text_string_to_metric_families(httpx.get(url, timeout=10).text)}


def metric_sum(samples, suffix: str = "", **labels) -> float:
    return sum(s.value for s in samples
               if s.name.endswith(suffix) and all(s.labels.get(k) == v for k, v in labels.items()))


def wait_for(predicate: Callable[[], bool], *, timeout: float, what: str, worker: Worker | None = None,
             explain: Callable[[], str] | None = None) -> float:
    """Poll ``predicate`` for up to ``timeout`` s. On a timeout the failure
    says, first, what ``explain`` finds (where the missing results are),
    then what the worker was doing: its books and stacks (SIGUSR1) and the
    story of its log. No traceback: CI shows a failure's first lines, and
    these are the ones that say why."""
    started = time.monotonic()
    while True:
        try:
            if predicate():
                return time.monotonic() - started
        except Exception:  # a query against a service that is catching up
            pass
        if worker is not None and not jvm.alive(worker.pid):
            pytest.fail(f"worker died while waiting for {what}:\n"
                        f"{log_digest(process_log(get_settings(), worker.name, 120))}", pytrace=False)
        if time.monotonic() - started > timeout:
            parts = [f"timed out after {timeout}s waiting for {what}"]
            if explain is not None:
                try:
                    parts.append(explain())
                except Exception as exc:  # the explanation must not hide the timeout
                    parts.append(f"(no explanation: {type(exc).__name__}: {exc})")
            if worker is not None:
                parts.append(f"worker {worker.name}, its log read:\n"
                             f"{worker_report(get_settings(), worker.name, worker.pid)}")
            pytest.fail("\n".join(parts), pytrace=False)
        time.sleep(0.5)
