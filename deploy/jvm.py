"""Process plumbing shared by the local services: find java, check ports,
start detached, track pid files, stop cleanly, tail logs.

Written for the JVMs; a native service (the Qdrant server) uses the same
plumbing with a ``Fingerprint`` of its own instead of the JVM marker args.
Stdlib only, so the CLI stays fast and this works before any service exists.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from deploy.exceptions import JavaMissing

MIN_JAVA = 17  # Kafka 4.x brokers require 17; Cassandra 5.0 runs on 11 or 17.

# Popen objects of JVMs started by this Python process. Kept so they are not
# garbage-collected while running (which warns), and so their exit can be
# reaped instead of lingering as zombies that look "alive" to kill(pid, 0).
_children: dict[int, subprocess.Popen] = {}


# --------------------------------------------------------------------- java
def find_java() -> str:
    """``$JAVA_HOME/bin/java`` when JAVA_HOME is set, else ``java`` on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if os.access(candidate, os.X_OK):
            return str(candidate)
        raise JavaMissing(
            f"JAVA_HOME is set to {java_home!r} but {candidate} is not an executable. "
            "Fix or unset JAVA_HOME (a JDK 17 is needed, e.g. Debian/Ubuntu package openjdk-17-jdk-headless)."
        )
    found = shutil.which("java")
    if not found:
        raise JavaMissing(
            "java was not found on PATH. Install a JDK 17 (Debian/Ubuntu: "
            "`apt-get install openjdk-17-jdk-headless`; macOS: `brew install openjdk@17`) "
            "or set JAVA_HOME to a JDK 17 directory."
        )
    return found


def java_major_version(java: str) -> int:
    """Major version from ``java -version`` (e.g. 17); 0 when unparseable."""
    out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return 0
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major  # "1.8" -> 8


def check_java(java: str) -> None:
    major = java_major_version(java)
    if major < MIN_JAVA:
        raise JavaMissing(
            f"{java} is Java {major or 'unknown'}; Kafka 4 and Cassandra 5 need JDK {MIN_JAVA}. "
            "Install openjdk-17-jdk-headless and/or point JAVA_HOME at it."
        )


def classpath(lib_dir: Path) -> str:
    # Sorted for a deterministic order (duplicate classes resolve the same way every run).
    return os.pathsep.join(str(p) for p in sorted(lib_dir.glob("*.jar")))


# -------------------------------------------------------------------- ports
def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something listens on (host, port) or binding it fails.

    Connect catches listeners on any address; bind (with SO_REUSEADDR, as the
    JVMs use) catches wildcard listeners, while TIME_WAIT leftovers from a
    just-stopped service do not count as "in use".
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        if s.connect_ex((host, port)) == 0:
            return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        return s.connect_ex((host, port)) == 0


# ---------------------------------------------------------------- processes
def marker_args(service: str, state_dir: Path) -> list[str]:
    """System properties that tag a JVM as ours: lets us tell our process from
    a recycled pid, and find it again if its pid file was lost."""
    return [f"-Dmurmur.service={service}", f"-Dmurmur.state_dir={state_dir}"]


@dataclass(frozen=True)
class Fingerprint:
    """What marks a process as ours: arguments its cmdline must contain and,
    when set, the working directory it must run in.

    A JVM carries marker args naming its state dir. A native binary takes no
    extra args (Qdrant rejects unknown ones) and is shared by every state dir
    from the cache, so its own path plus the service's home as cwd stand in.
    """

    args: tuple[str, ...]
    cwd: Path | None = None


def jvm_fingerprint(service: str, state_dir: Path) -> Fingerprint:
    return Fingerprint(tuple(marker_args(service, state_dir)))


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.decode(errors="replace").split("\0")


def _cwd(pid: int) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:  # gone, or another user's process
        return None


def _matches(pid: int, cmd: list[str], fp: Fingerprint) -> bool:
    return set(fp.args) <= set(cmd) and (fp.cwd is None or _cwd(pid) == fp.cwd)


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def _reap(pid: int) -> None:
    proc = _children.get(pid)
    if proc is not None:
        if proc.poll() is not None:
            _children.pop(pid, None)
        return
    try:  # child of ours from an untracked Popen: reap if it already exited
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def is_ours(pid: int, service: str, state_dir: Path, fingerprint: Fingerprint | None = None) -> bool:
    """Alive, not a zombie, and matching our fingerprint (by default the JVM
    marker properties)."""
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process reusing the pid
    if _zombie(pid):
        return False
    cmd = _cmdline(pid)
    if cmd is None:  # no /proc (macOS): trust the pid file
        return True
    return _matches(pid, cmd, fingerprint or jvm_fingerprint(service, state_dir))


def find_ours(service: str, state_dir: Path, fingerprint: Fingerprint | None = None) -> int | None:
    """Scan /proc for our process when the pid file is missing (Linux only)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    fp = fingerprint or jvm_fingerprint(service, state_dir)
    for entry in proc.iterdir():
        if entry.name.isdigit():
            pid = int(entry.name)
            cmd = _cmdline(pid)
            if cmd and _matches(pid, cmd, fp) and not _zombie(pid):
                return pid
    return None


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def running_pid(pid_file: Path, service: str, state_dir: Path,
                fingerprint: Fingerprint | None = None) -> int | None:
    """The pid of our running service, repairing a stale or missing pid file."""
    pid = read_pid(pid_file)
    if pid is not None and is_ours(pid, service, state_dir, fingerprint):
        return pid
    pid_file.unlink(missing_ok=True)
    pid = find_ours(service, state_dir, fingerprint)
    if pid is not None:
        pid_file.parent.mkdir(parents=True, exist_ok=True)  # the state folder may have been deleted under it
        pid_file.write_text(f"{pid}\n")
    return pid


def start_detached(cmd: list[str], *, log_file: Path, pid_file: Path, cwd: Path,
                   env: dict[str, str] | None = None) -> int:
    """Start in its own session (survives the CLI, no terminal signals),
    stdout+stderr appended to log_file, pid written to pid_file."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
        )
    _children[proc.pid] = proc
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def alive(pid: int) -> bool:
    _reap(pid)
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return not _zombie(pid)


def stop(pid: int, timeout: float) -> bool:
    """SIGTERM (the JVMs' shutdown hooks flush and deregister), wait, then
    SIGKILL. Returns True when the clean stop worked."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    if wait_for(lambda: not alive(pid), timeout):
        return True
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    wait_for(lambda: not alive(pid), 10.0)
    return False


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def tail(path: Path, lines: int = 20) -> str:
    try:
        with open(path, "r", errors="replace") as fh:
            return "".join(deque(fh, maxlen=lines)).rstrip()
    except OSError:
        return ""
