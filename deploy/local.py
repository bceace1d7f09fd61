"""Facade behind ``murmur services up|down|status``: local Kafka + Cassandra
JVMs and, when asked by name, a Qdrant server; data and logs under
``settings.state_dir``, jars and binaries under ``settings.cache_dir``.

Every call is idempotent (``up`` on a healthy service and ``down`` on a
stopped one are no-ops) so scripts and tests can call them freely.

Two kinds of service: JVMs (Kafka, Cassandra) get their jars from Maven and
a ``java``; a native one (``runtime = "native"``: Qdrant) fetches its own
binary with ``fetch(log)`` and is launched from it. Java is only looked for
when a JVM is about to start.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import time
from pathlib import Path
from typing import Callable, Iterator, Iterable

from deploy import jvm, maven
from deploy.cassandra import Cassandra
from deploy.exceptions import DeployError, PortInUse, ProcessExited, StartTimeout
from deploy.kafka import CLUSTER, Kafka
from deploy.qdrant import Qdrant
from deploy.registry import Registry

_CLASSES = {"kafka": Kafka, "cassandra": Cassandra, "qdrant": Qdrant, "registry": Registry}
# "kafka-cluster" stands for the nodes of a local KRaft cluster, each also
# known by its own name (kafka-1 .. kafka-N; deploy/kafka.py); opt-in too.
KNOWN = (*_CLASSES, CLUSTER)
# What up/down/status act on without names. Qdrant is opt-in (`up(s, ("qdrant",))`):
# the pipeline and its tests use the in-process store unless MURMUR_QDRANT_URL is set.
# So is the schema registry (`up(s, ("registry",))`): records carry schema
# fingerprints unless MURMUR_SCHEMA_REGISTRY_URL is set.
SERVICES = ("kafka", "cassandra")

Log = Callable[[str], None]


def _services(settings, names: Iterable[str]) -> list:
    if isinstance(names, str):  # up(s, "kafka") would otherwise iterate letters
        names = (names,)
    nodes = range(1, settings.services.kafka_cluster_nodes + 1)
    node_names = {f"kafka-{n}": n for n in nodes}
    unknown = [n for n in names if n not in _CLASSES and n != CLUSTER and n not in node_names]
    if unknown:
        raise DeployError(f"unknown service(s) {unknown}; choose from {KNOWN}")
    out = []
    for n in names:
        if n == CLUSTER:
            out += [Kafka(settings, node) for node in nodes]
        elif n in node_names:
            out.append(Kafka(settings, node_names[n]))
        else:
            out.append(_CLASSES[n](settings))
    return out


def _is_jvm(svc) -> bool:
    return getattr(svc, "runtime", "jvm") == "jvm"  # Kafka and Cassandra predate the attribute


def _fetch(svc, log: Log) -> Path:
    """What the launch needs: a JVM service's jar dir, a native one's binary."""
    if _is_jvm(svc):
        return maven.fetch(svc.name, svc.artifacts(), svc.cache, log=log)
    return svc.fetch(log)


def _prepare_command(svc, java: str | None, fetched: Path) -> list[str]:
    if _is_jvm(svc):
        svc.prepare(java, fetched)
        return svc.command(java, fetched)
    svc.prepare(fetched)
    return svc.command(fetched)


@contextlib.contextmanager
def _locked(settings) -> Iterator[None]:
    """One up/down/restart at a time per state dir (e.g. parallel test
    sessions), so two callers never launch the same service twice."""
    state = Path(settings.state_dir).resolve()
    state.mkdir(parents=True, exist_ok=True)
    with open(state / ".deploy.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _pid(svc) -> int | None:
    fingerprint = None if _is_jvm(svc) else svc.fingerprint()  # None: the JVM marker args
    return jvm.running_pid(svc.pid_file, svc.name, svc.state_dir, fingerprint)


def _log_tail(svc) -> tuple[object, str]:
    """Main log tail, plus stdout.log (JVM errors that happen before logging
    is set up, like a bad flag, only appear there)."""
    if svc.stdout_file == svc.log_file:  # a service that only logs to stdout
        return svc.log_file, jvm.tail(svc.log_file, 20)
    parts = []
    main = jvm.tail(svc.log_file, 20)
    if main:
        parts.append(main)
    out = jvm.tail(svc.stdout_file, 20)
    if out:
        parts.append(f"--- {svc.stdout_file} ---\n{out}")
    return f"{svc.log_file} (and {svc.stdout_file})", "\n".join(parts)


def fetch(settings, names=SERVICES, *, log: Log = print) -> None:
    """Download the jars or binaries of ``names`` into the cache unless already complete."""
    for svc in _services(settings, names):
        _fetch(svc, log)


def up(settings, names=SERVICES, *, log: Log = print) -> dict[str, str]:
    """Fetch, configure, start and wait until healthy.

    All services are launched first and then awaited, so Kafka and Cassandra
    boot in parallel. A service whose process is ours and healthy is left alone.
    """
    services = _services(settings, names)
    with _locked(settings):
        return _up(settings, services, log)


def _up(settings, services: list, log: Log) -> dict[str, str]:
    result: dict[str, str] = {}
    launched: dict[str, tuple[object, int, float]] = {}
    to_start = []
    for svc in services:
        pid = _pid(svc)
        if pid is not None:
            launched[svc.name] = (svc, pid, time.monotonic())  # ours: maybe still booting
            result[svc.name] = f"already running (pid {pid})"
        else:
            to_start.append(svc)
    # Every check before the first launch, so a failure leaves nothing half-started.
    for svc in to_start:
        for port, env_var in svc.ports():
            if jvm.port_in_use(port):
                raise PortInUse(svc.name, port, env_var)
    java = None
    if any(_is_jvm(svc) for svc in to_start):
        java = jvm.find_java()
        jvm.check_java(java)
    fetched = {svc.name: _fetch(svc, log) for svc in to_start}
    for svc in to_start:
        cmd = _prepare_command(svc, java, fetched[svc.name])
        pid = jvm.start_detached(cmd, log_file=svc.stdout_file,
                                 pid_file=svc.pid_file, cwd=svc.home, env=svc.env())
        log(f"{svc.name}: started pid {pid}, waiting for it to answer on 127.0.0.1:{svc.port} ...")
        launched[svc.name] = (svc, pid, time.monotonic())

    timeout = settings.services.start_timeout_s
    for name, (svc, pid, started) in launched.items():
        _wait_healthy(svc, pid, started + timeout, timeout)
        if name not in result:
            result[name] = f"started (pid {pid}, healthy after {time.monotonic() - started:.1f}s)"
            log(f"{name}: {result[name]}")
    return result


def _wait_healthy(svc, pid: int, deadline: float, timeout: float) -> None:
    detail = ""
    pause = 0.1  # doubling to 1 s: Qdrant answers in ~0.1 s, the JVMs take seconds
    while True:
        if not jvm.alive(pid):
            svc.pid_file.unlink(missing_ok=True)
            where, tail = _log_tail(svc)
            raise ProcessExited(svc.name, f"the process (pid {pid}) exited while starting", where, tail)
        ok, detail = svc.health(timeout=5.0)
        if ok:
            return
        if time.monotonic() >= deadline:
            # Stop it: a half-started process would make the next `up` report "already running".
            jvm.stop(pid, svc.stop_timeout_s)
            svc.pid_file.unlink(missing_ok=True)
            where, tail = _log_tail(svc)
            raise StartTimeout(
                svc.name,
                f"not healthy within {timeout:.0f}s ({detail}); stopped it. Raise "
                f"MURMUR_SERVICES__START_TIMEOUT_S if this machine is just slow",
                where, tail)
        time.sleep(pause)
        pause = min(pause * 2, 1.0)


def down(settings, names=SERVICES, *, log: Log = print) -> dict[str, str]:
    """SIGTERM every running service, wait, SIGKILL stragglers, drop pid files."""
    services = _services(settings, names)
    with _locked(settings):
        return _down(services, log)


def _down(services: list, log: Log) -> dict[str, str]:
    result: dict[str, str] = {}
    # Every SIGTERM first, then the waits: a cluster's nodes stopped one by one
    # lose their quorum after the first ones, and the last would wait for it
    # until SIGKILL; stopped together they all exit cleanly in seconds.
    pids = {svc.name: _pid(svc) for svc in services}
    for pid in pids.values():
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    for svc in services:
        pid = pids[svc.name]
        if pid is None:
            result[svc.name] = "not running"
            continue
        log(f"{svc.name}: stopping pid {pid} ...")
        started = time.monotonic()
        clean = jvm.stop(pid, svc.stop_timeout_s)
        svc.pid_file.unlink(missing_ok=True)
        how = "stopped" if clean else f"killed (no clean exit within {svc.stop_timeout_s:.0f}s)"
        result[svc.name] = f"{how} (pid {pid}, {time.monotonic() - started:.1f}s)"
        log(f"{svc.name}: {result[svc.name]}")
    return result


def status(settings, names=SERVICES) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for svc in _services(settings, names):
        pid = _pid(svc)
        if pid is None:
            taken = [p for p, _ in svc.ports() if jvm.port_in_use(p)]
            detail = f"not running; port(s) {taken} held by another process" if taken else "not running"
            out[svc.name] = {"running": False, "pid": None, "healthy": False,
                             "port": svc.port, "detail": detail}
            continue
        healthy, detail = svc.health(timeout=3.0)
        out[svc.name] = {"running": True, "pid": pid, "healthy": healthy,
                         "port": svc.port, "detail": detail}
    return out


def restart(settings, name: str, *, log: Log = print) -> None:
    """Stop and start one service; its data dirs are kept."""
    services = _services(settings, (name,))
    with _locked(settings):  # one critical section: nobody can start it in between
        _down(services, log)
        _up(settings, services, log)
