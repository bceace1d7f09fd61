"""The docs' commands run as written.

Every ```` ```bash runnable ```` block of docs/*.md and README.md is run
with bash (``set -euo pipefail``, from the repository root, .venv/bin first
on PATH) against this session's Kafka and Cassandra, in document order: a
block may use what an earlier block of the same page did, as a reader
would. The commands get the session's settings through ``MURMUR_*``
variables and a namespace of their own, so what they create (consumer
groups, derived topics, keyspace, Qdrant folder) never mixes with other
tests' data. Blocks must be quick and must leave the shared services
running and untouched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from streams.topology import input_topics, resolve
from streams.app import group_id
from streams.kafka import group_lag
from streams.settings import Settings
from tests.docblocks import ROOT, RUNNABLE, Block, blocks, doc_files, runnable

pytestmark = pytest.mark.integration

TIMEOUT_S = 120  # per block; they take a few seconds, but the machine may be busy
DOCS = doc_files()
BLOCKS = [b for path in DOCS if path.is_file() for b in runnable(path)]
# Commands a runnable block must never contain: they stop or reset the
# services every other test of the session uses.
FORBIDDEN = ("services down", "services restart")


def test_every_page_in_docs_has_runnable_blocks():
    pages = sorted((ROOT / "docs").glob("*.md"))
    assert pages, "no docs/*.md found"
    empty = [p.relative_to(ROOT).as_posix() for p in pages if not runnable(p)]
    assert not empty, f"pages without a ```{RUNNABLE} block: {empty}"


def test_runnable_is_spelled_exactly():
    """A typo in the info string would silently turn a tested block into an
    untested one."""
    wrong = [f"{b.where}: ```{b.info}" for path in DOCS if path.is_file() for b in blocks(path)
             if "runnable" in b.info and b.info != RUNNABLE]
    assert not wrong, f"write the info string exactly as ```{RUNNABLE}: {wrong}"


def test_runnable_blocks_leave_the_shared_services_alone():
    bad = [f"{b.where}: {f}" for b in BLOCKS for f in FORBIDDEN if f in b.code]
    assert not bad, f"runnable blocks must not stop the services: {bad}"
    # A restore resets the groups its checkpoint recorded: a block may only
    # restore a checkpoint it took itself (of its own namespace's group), not
    # one picked from the shared checkpoints topic.
    blind = [b.where for b in BLOCKS if "checkpoint restore" in b.code and "checkpoint create" not in b.code]
    assert not blind, f"runnable blocks restoring a checkpoint they did not create: {blind}"


def _env(live: Settings, namespace: str, scratch: Path) -> dict[str, str]:
    """The session's environment (it made ``live``), with the service
    locations spelled out from ``live`` and a namespace of the docs' own."""
    env = {k: v for k, v in os.environ.items() if k != "MURMUR_SIM"}
    venv_bin = ROOT / ".venv" / "bin"
    env["PATH"] = f"{venv_bin if venv_bin.is_dir() else Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["TMPDIR"] = str(scratch)
    for name, value in live.services.model_dump().items():
        env[f"MURMUR_SERVICES__{name.upper()}"] = str(value)
    env.update({
        "MURMUR_STATE_DIR": str(live.state_dir),
        "MURMUR_CACHE_DIR": str(live.cache_dir),
        "MURMUR_KAFKA_BOOTSTRAP": live.kafka_bootstrap,
        "MURMUR_TOPIC_PARTITIONS": str(live.topic_partitions),
        "MURMUR_CASSANDRA_HOSTS": json.dumps(list(live.cassandra_hosts)),
        "MURMUR_CASSANDRA_PORT": str(live.cassandra_port),
        "MURMUR_CASSANDRA_KEYSPACE": live.cassandra_keyspace,
        "MURMUR_NAMESPACE": namespace,
        # Local Qdrant admits one process per folder: never the session's.
        "MURMUR_QDRANT_PATH": str(scratch / "qdrant"),
        # Nothing here should serve metrics; if something does, no port race.
        "MURMUR_METRICS_PORT": "0",
    })
    return env


def _coordinator_ready(settings: Settings, timeout: float = 60.0) -> None:
    """On a broker that has never seen a consumer group, the first group
    query fails with NOT_COORDINATOR while Kafka creates __consumer_offsets
    (`murmur lag` does not retry it): wait for that here, so a block fails
    for its own reasons only."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            group_lag(settings, group_id(settings, "all"), input_topics(settings, resolve("all")))
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


@pytest.fixture(scope="module")
def docs_env(live, tmp_path_factory) -> dict[str, str]:
    namespace = f"docs{uuid.uuid4().hex[:8]}"
    _coordinator_ready(live.model_copy(update={"namespace": namespace}))
    return _env(live, namespace, tmp_path_factory.mktemp("docs"))


@pytest.mark.parametrize("block", BLOCKS, ids=[b.where for b in BLOCKS])
def test_runnable_block(block: Block, docs_env):
    started = time.monotonic()
    try:
        done = subprocess.run(["bash", "-c", "set -euo pipefail\n" + block.code], cwd=ROOT, env=docs_env,
                              capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        out, err = (x.decode(errors="replace") if isinstance(x, bytes) else (x or "") for x in (exc.stdout, exc.stderr))
        pytest.fail(f"{block.where}: still running after {TIMEOUT_S}s\n--- block ---\n{block.code}"
                    f"--- stdout ---\n{out[-4000:]}\n--- stderr ---\n{err[-4000:]}")
    took = time.monotonic() - started
    assert done.returncode == 0, (
        f"{block.where}: exit {done.returncode} after {took:.1f}s\n--- block ---\n{block.code}"
        f"--- stdout ---\n{done.stdout[-4000:]}\n--- stderr ---\n{done.stderr[-4000:]}")
    print(f"{block.where}: {took:.1f}s")
