"""deploy/: generated configs, pre-start checks and process plumbing.

No Kafka or Cassandra is started here; everything uses a temp state dir and
ports nobody listens on.
"""

from __future__ import annotations

import os
import socket
import stat
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from deploy import jvm, local, maven
from deploy.cassandra import Cassandra
from deploy.exceptions import (
    DeployError, FetchFailed, JavaMissing, MavenMissing, PortInUse, ProcessExited, StartTimeout,
)
from deploy.kafka import Kafka
from streams.settings import ServiceSettings, Settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        state_dir=tmp_path / "state",
        cache_dir=tmp_path / "cache",
        topic_partitions=6,
        services=ServiceSettings(
            kafka_port=_free_port(), kafka_controller_port=_free_port(), kafka_sasl_port=_free_port(),
            cassandra_cql_port=_free_port(), cassandra_storage_port=_free_port(),
            kafka_heap_mb=4096, cassandra_heap_mb=8192, start_timeout_s=5,
        ),
    )


@pytest.fixture
def no_java(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PATH without java (mvn still absent too) and no JAVA_HOME."""
    empty = tmp_path / "emptybin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("JAVA_HOME", raising=False)


# ------------------------------------------------------------------ kafka
def test_kafka_properties_have_ports_and_paths(settings: Settings) -> None:
    k = Kafka(settings)
    svc = settings.services
    props = dict(
        line.split("=", 1) for line in k.render_properties().splitlines()
        if line and not line.startswith("#")
    )
    assert props["process.roles"] == "broker,controller"
    sasl = f"SASL_PLAINTEXT://127.0.0.1:{svc.kafka_sasl_port}"
    assert props["listeners"] == (
        f"PLAINTEXT://127.0.0.1:{svc.kafka_port},CONTROLLER://127.0.0.1:{svc.kafka_controller_port},{sasl}")
    assert props["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{svc.kafka_port},{sasl}"
    # The SASL listener's user list holds the password generated for this state dir, and only that.
    user, password = k.sasl_credentials()
    assert len(password) >= 32 and k.sasl_credentials() == (user, password)
    assert props["listener.name.sasl_plaintext.plain.sasl.jaas.config"].endswith(f'user_{user}="{password}";')
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["controller.quorum.voters"] == f"1@127.0.0.1:{svc.kafka_controller_port}"
    assert props["log.dirs"] == str(settings.state_dir / "kafka" / "data")
    assert props["num.partitions"] == "6"
    for key in ("offsets.topic.replication.factor", "transaction.state.log.replication.factor",
                "transaction.state.log.min.isr", "share.coordinator.state.topic.replication.factor",
                "share.coordinator.state.topic.min.isr"):
        assert props[key] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props.get("auto.create.topics.enable", "true") == "true"


def test_kafka_without_a_sasl_listener(settings: Settings) -> None:
    s = settings.model_copy(update={"services": settings.services.model_copy(update={"kafka_sasl_port": 0})})
    text = Kafka(s).render_properties()
    assert "SASL_PLAINTEXT://" not in text and "jaas" not in text
    assert all(env != "MURMUR_SERVICES__KAFKA_SASL_PORT" for _, env in Kafka(s).ports())


def test_kafka_log4j_and_command(settings: Settings, tmp_path: Path) -> None:
    k = Kafka(settings)
    root = ET.fromstring(k.render_log4j())  # well-formed XML
    assert str(settings.state_dir / "kafka" / "logs" / "server.log") in ET.tostring(root, encoding="unicode")
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "kafka_2.13-4.1.1.jar").touch()
    cmd = k.command("/opt/java/bin/java", lib)
    assert cmd[0] == "/opt/java/bin/java"
    assert cmd[-2:] == ["kafka.Kafka", str(k.properties_file)]
    assert "-Xmx1024m" in cmd and "-Xms1024m" in cmd  # 4096 requested, capped at 1 GiB
    assert f"-Dlog4j2.configurationFile={k.log4j_file}" in cmd
    assert f"-Dkafka.logs.dir={k.logs_dir}" in cmd
    assert "-XX:+UseG1GC" in cmd
    assert str(lib / "kafka_2.13-4.1.1.jar") in cmd[cmd.index("-cp") + 1]


def test_kafka_cluster_id_is_kept(settings: Settings) -> None:
    k = Kafka(settings)
    k.home.mkdir(parents=True)
    first = k.cluster_id()
    assert len(first) == 22 and not first.startswith("-")
    assert Kafka(settings).cluster_id() == first


# -------------------------------------------------------------- cassandra
def test_cassandra_yaml_has_ports_and_paths(settings: Settings) -> None:
    c = Cassandra(settings)
    svc = settings.services
    text = c.render_yaml()
    lines = {line.strip() for line in text.splitlines()}
    home = settings.state_dir / "cassandra"
    assert f"native_transport_port: {svc.cassandra_cql_port}" in lines
    assert f"storage_port: {svc.cassandra_storage_port}" in lines
    assert f'- seeds: "127.0.0.1:{svc.cassandra_storage_port}"' in lines
    assert f"- {home / 'data'}" in lines
    for key, sub in (("commitlog_directory", "commitlog"), ("saved_caches_directory", "saved_caches"),
                     ("hints_directory", "hints"), ("cdc_raw_directory", "cdc_raw")):
        assert f"{key}: {home / sub}" in lines
    for must in ("num_tokens: 1", "initial_token: 0", "commitlog_sync: periodic",
                 "commitlog_sync_period: 10000ms", "endpoint_snitch: SimpleSnitch",
                 "listen_address: 127.0.0.1", "rpc_address: 127.0.0.1",
                 "partitioner: org.apache.cassandra.dht.Murmur3Partitioner"):
        assert must in lines
    assert "$" not in text  # every template placeholder substituted
    ET.fromstring(c.render_logback())


def test_cassandra_command(settings: Settings, tmp_path: Path) -> None:
    c = Cassandra(settings)
    lib = tmp_path / "lib"
    lib.mkdir()
    for jar in ("cassandra-all-5.0.6.jar", "jamm-0.4.0.jar"):
        (lib / jar).touch()
    cmd = c.command("java", lib)
    assert cmd[-1] == "org.apache.cassandra.service.CassandraDaemon"
    assert "-Xmx2048m" in cmd and "-Xms2048m" in cmd  # 8192 requested, capped at 2 GiB
    assert f"-javaagent:{lib / 'jamm-0.4.0.jar'}" in cmd
    assert f"-Dcassandra.config=file://{c.yaml_file}" in cmd
    assert f"-Dlogback.configurationFile={c.logback_file}" in cmd
    assert "-Dcassandra-foreground=yes" in cmd and "-Xss256k" in cmd
    # JDK 17 module flags come in (flag, value) pairs.
    i = cmd.index("java.base/sun.nio.ch=ALL-UNNAMED")
    assert cmd[i - 1] == "--add-opens"


def test_cassandra_without_jamm_says_refetch(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(DeployError, match="re-fetch"):
        Cassandra(settings).jvm_args(tmp_path)


# ---------------------------------------------------------------- checks
def test_taken_port_raises_port_in_use(settings: Settings) -> None:
    port = settings.services.cassandra_cql_port
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        with pytest.raises(PortInUse) as err:
            local.up(settings, ("cassandra",), log=lambda _m: None)
        assert str(port) in str(err.value)
        assert "MURMUR_SERVICES__CASSANDRA_CQL_PORT" in str(err.value)
        assert jvm.port_in_use(port)
        st = local.status(settings, ("cassandra",))["cassandra"]
        assert st["running"] is False and str(port) in st["detail"]
    assert not (settings.state_dir / "cassandra" / "cassandra.pid").exists()


def test_missing_java_raises_java_missing(settings: Settings, no_java: None) -> None:
    with pytest.raises(JavaMissing, match="openjdk-17"):
        jvm.find_java()
    with pytest.raises(JavaMissing):
        local.up(settings, ("kafka",), log=lambda _m: None)


def test_bad_java_home_raises_java_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nojdk"))
    with pytest.raises(JavaMissing, match="JAVA_HOME"):
        jvm.find_java()


def test_old_java_is_rejected(tmp_path: Path) -> None:
    fake = tmp_path / "java"
    fake.write_text('#!/bin/sh\necho \'openjdk version "11.0.22" 2024-01-16\' >&2\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    assert jvm.java_major_version(str(fake)) == 11
    with pytest.raises(JavaMissing, match="17"):
        jvm.check_java(str(fake))


def test_missing_maven_raises_maven_missing(tmp_path: Path, no_java: None) -> None:
    arts = [maven.Artifact("org.example", "x", "1")]
    with pytest.raises(MavenMissing, match="apt-get install maven"):
        maven.fetch("x", arts, tmp_path / "x", log=lambda _m: None)


def test_fetch_is_skipped_when_marker_matches(tmp_path: Path, no_java: None) -> None:
    """A complete fetch is reused without mvn; a half fetch (no marker) is not."""
    arts = [maven.Artifact("org.example", "x", "1")]
    dest = tmp_path / "x"
    (dest / "lib").mkdir(parents=True)
    (dest / "lib" / "x-1.jar").touch()
    with pytest.raises(MavenMissing):  # no marker: must re-fetch, and mvn is absent
        maven.fetch("x", arts, dest, log=lambda _m: None)
    (dest / maven.MARKER).write_text('{"artifacts": ["org.example:x:1"]}')
    assert maven.fetch("x", arts, dest, log=lambda _m: None) == dest / "lib"
    assert not maven.is_fetched(dest, [maven.Artifact("org.example", "x", "2")])


def test_failing_mvn_raises_fetch_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "mvn"
    fake.write_text("#!/bin/sh\necho 'Could not resolve dependencies' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(FetchFailed, match="Could not resolve"):
        maven.fetch("x", [maven.Artifact("org.example", "x", "1")], tmp_path / "x", log=lambda _m: None)
    assert not (tmp_path / "x" / maven.MARKER).exists()


def test_pom_is_valid_xml() -> None:
    pom = maven.render_pom("kafka", [maven.Artifact("org.apache.kafka", "kafka_2.13", "4.1.1")])
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    root = ET.fromstring(pom)
    assert root.find("m:packaging", ns).text == "pom"
    assert root.find("m:dependencies/m:dependency/m:artifactId", ns).text == "kafka_2.13"


# ------------------------------------------------------- process plumbing
def test_down_and_status_when_nothing_runs(settings: Settings) -> None:
    assert local.down(settings, log=lambda _m: None) == {"kafka": "not running", "cassandra": "not running"}
    st = local.status(settings)
    assert set(st) == set(local.SERVICES)
    for name, entry in st.items():
        assert entry["running"] is False and entry["healthy"] is False and entry["pid"] is None
    assert st["kafka"]["port"] == settings.services.kafka_port


def test_stale_pid_file_is_ignored(settings: Settings) -> None:
    k = Kafka(settings)
    k.home.mkdir(parents=True)
    k.pid_file.write_text(f"{os.getpid()}\n")  # alive, but not a JVM of ours
    assert local.status(settings, ("kafka",))["kafka"]["running"] is False
    assert not k.pid_file.exists()


def test_start_find_and_stop_a_detached_process(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    pid_file, log_file = state / "x.pid", state / "logs" / "x.log"
    cmd = [sys.executable, "-c", "import time; print('hello', flush=True); time.sleep(60)",
           *jvm.marker_args("x", state)]
    pid = jvm.start_detached(cmd, log_file=log_file, pid_file=pid_file, cwd=state)
    try:
        assert jvm.running_pid(pid_file, "x", state) == pid
        pid_file.unlink()  # lost pid file: found again through its marker args
        assert jvm.running_pid(pid_file, "x", state) == pid
        assert jvm.read_pid(pid_file) == pid
        assert jvm.wait_for(lambda: "hello" in jvm.tail(log_file), 10)
        assert os.getsid(pid) == pid  # own session: terminal signals don't reach it
    finally:
        assert jvm.stop(pid, timeout=10) is True
    assert not jvm.alive(pid)
    assert jvm.running_pid(pid_file, "x", state) is None


def test_unknown_service_is_rejected(settings: Settings) -> None:
    with pytest.raises(DeployError, match="unknown service"):
        local.status(settings, ("zookeeper",))


class _FakeService:
    """Stands in for Kafka/Cassandra: a plain Python process that never gets healthy."""

    name = "fake"
    stop_timeout_s = 5.0

    def __init__(self, home: Path) -> None:
        self.home = self.state_dir = home
        self.pid_file = home / "fake.pid"
        self.log_file = home / "logs" / "main.log"
        self.stdout_file = home / "logs" / "stdout.log"

    def health(self, timeout: float) -> tuple[bool, str]:
        return False, "nothing listening"

    def start(self, code: str) -> int:
        cmd = [sys.executable, "-c", code, *jvm.marker_args(self.name, self.state_dir)]
        return jvm.start_detached(cmd, log_file=self.stdout_file, pid_file=self.pid_file, cwd=self.home)


def test_start_timeout_names_log_and_shows_tail(tmp_path: Path) -> None:
    svc = _FakeService(tmp_path)
    svc.log_file.parent.mkdir(parents=True)
    svc.log_file.write_text("".join(f"line {i}\n" for i in range(100)))
    pid = svc.start("import time; time.sleep(60)")
    with pytest.raises(StartTimeout) as err:
        local._wait_healthy(svc, pid, deadline=time.monotonic() + 1.0, timeout=1.0)
    msg = str(err.value)
    assert str(svc.log_file) in msg and "START_TIMEOUT_S" in msg
    assert "line 99" in msg and "line 80" in msg and "line 79" not in msg  # last 20 lines
    assert not jvm.alive(pid) and not svc.pid_file.exists()  # a timed-out JVM is stopped


def test_process_exit_during_start_is_reported(tmp_path: Path) -> None:
    svc = _FakeService(tmp_path)
    pid = svc.start("import sys; print('Error: Could not create the Java Virtual Machine.'); sys.exit(1)")
    with pytest.raises(ProcessExited, match="Could not create the Java Virtual Machine"):
        local._wait_healthy(svc, pid, deadline=time.monotonic() + 30, timeout=30)
