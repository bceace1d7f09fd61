"""Apache Kafka 4.x on loopback: one KRaft node (broker + controller), or
node N of a local cluster of ``services.kafka_cluster_nodes`` such nodes
(``murmur services up kafka-cluster``) with replicated topics.

Runs straight from the Maven artifact ``org.apache.kafka:kafka_2.13`` (no
tarball, no scripts): we write ``server.properties`` and a log4j2 config,
format the storage once, then launch ``kafka.Kafka``.
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import uuid
from pathlib import Path
from string import Template

from deploy import jvm
from deploy.exceptions import DeployError
from deploy.maven import Artifact

TEMPLATES = Path(__file__).parent / "templates"
SASL_USER = "murmur"
LOG4J_VERSION = "2.24.3"  # Kafka's artifact declares no logging backend; we bring log4j2.

# From kafka-run-class.sh (KAFKA_JVM_PERFORMANCE_OPTS).
PERFORMANCE_OPTS = [
    "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15", "-Djava.awt.headless=true",
]


CLUSTER = "kafka-cluster"  # the service name that stands for every node of the cluster


def cluster_ports(svc, node: int) -> tuple[int, int]:
    """Client and controller port of cluster node ``node`` (1-based)."""
    base = svc.kafka_cluster_port + 10 * (node - 1)
    return base, base + 1


def cluster_bootstrap(svc) -> str:
    """MURMUR_KAFKA_BOOTSTRAP for the local cluster: every node."""
    return ",".join(f"127.0.0.1:{cluster_ports(svc, n)[0]}" for n in range(1, svc.kafka_cluster_nodes + 1))


def replication_lines(nodes: int) -> str:
    """Internal topics' replication and the brokers' defaults for topics
    created without their own (Faust's changelogs among them). One broker
    cannot have more than one replica; a cluster keeps 3 copies (at most one
    per node) and needs 2 in sync for an acks=all write, so one node may be
    down and a lost leader loses no acknowledged record."""
    if nodes == 1:
        return ("# One broker: internal topics cannot have more than one replica.\n"
                "offsets.topic.replication.factor=1\n"
                "transaction.state.log.replication.factor=1\n"
                "transaction.state.log.min.isr=1\n"
                "share.coordinator.state.topic.replication.factor=1\n"
                "share.coordinator.state.topic.min.isr=1")
    rf = min(nodes, 3)
    isr = min(rf - 1, 2)
    return (f"# {nodes} nodes: {rf} replicas of every partition, {isr} in sync for a write to count.\n"
            f"offsets.topic.replication.factor={rf}\n"
            f"transaction.state.log.replication.factor={rf}\n"
            f"transaction.state.log.min.isr={isr}\n"
            f"share.coordinator.state.topic.replication.factor={rf}\n"
            f"share.coordinator.state.topic.min.isr={isr}\n"
            f"default.replication.factor={rf}\n"
            f"min.insync.replicas={isr}")


class Kafka:
    name = "kafka"
    stop_timeout_s = 60.0  # controlled shutdown is a few seconds; SIGKILL after this

    def __init__(self, settings, node: int | None = None) -> None:
        """``node`` None: the single broker; 1..kafka_cluster_nodes: that node
        of the local cluster, with a name, home and ports of its own (so pid
        files and JVM marker args tell the nodes apart)."""
        self.settings = settings
        self.svc = settings.services
        self.node = node
        self.state_dir = Path(settings.state_dir).resolve()
        if node is None:
            self.home = self.state_dir / "kafka"
            self.port, self.controller_port = self.svc.kafka_port, self.svc.kafka_controller_port
        else:
            if not 1 <= node <= self.svc.kafka_cluster_nodes:
                raise DeployError(f"kafka cluster node {node} does not exist: the cluster has nodes "
                                  f"1..{self.svc.kafka_cluster_nodes} (MURMUR_SERVICES__KAFKA_CLUSTER_NODES)")
            self.name = f"kafka-{node}"
            self.home = self.state_dir / CLUSTER / f"node-{node}"
            self.port, self.controller_port = cluster_ports(self.svc, node)
        self.data_dir = self.home / "data"
        self.logs_dir = self.home / "logs"
        self.conf_dir = self.home / "conf"
        self.properties_file = self.conf_dir / "server.properties"
        self.log4j_file = self.conf_dir / "log4j2.xml"
        # The cluster's nodes share one id: each formats its storage with it once.
        self.cluster_id_file = self.home / "cluster.id" if node is None else self.home.parent / "cluster.id"
        self.pid_file = self.home / "kafka.pid"
        self.log_file = self.logs_dir / "server.log"
        self.stdout_file = self.logs_dir / "stdout.log"
        self.cache = Path(settings.cache_dir).expanduser().resolve() / "maven" / f"kafka-{self.svc.kafka_version}"

    # ------------------------------------------------------------ config
    def ports(self) -> list[tuple[int, str]]:
        if self.node is not None:
            return [(self.port, "MURMUR_SERVICES__KAFKA_CLUSTER_PORT"),
                    (self.controller_port, "MURMUR_SERVICES__KAFKA_CLUSTER_PORT")]
        ports = [(self.svc.kafka_port, "MURMUR_SERVICES__KAFKA_PORT"),
                 (self.svc.kafka_controller_port, "MURMUR_SERVICES__KAFKA_CONTROLLER_PORT")]
        if self.svc.kafka_sasl_port:
            ports.append((self.svc.kafka_sasl_port, "MURMUR_SERVICES__KAFKA_SASL_PORT"))
        return ports

    def artifacts(self) -> list[Artifact]:
        return [
            Artifact("org.apache.kafka", "kafka_2.13", self.svc.kafka_version),
            Artifact("org.apache.logging.log4j", "log4j-core", LOG4J_VERSION),
            Artifact("org.apache.logging.log4j", "log4j-slf4j-impl", LOG4J_VERSION),
        ]

    def render_properties(self) -> str:
        sasl_listener = sasl_config = ""
        if self.svc.kafka_sasl_port and self.node is None:  # cluster nodes: PLAINTEXT only
            user, password = self.sasl_credentials()
            sasl_listener = f",SASL_PLAINTEXT://127.0.0.1:{self.svc.kafka_sasl_port}"
            # The broker's own user list (PlainLoginModule's user_<name>), for this listener only.
            sasl_config = ("# SASL/PLAIN on loopback: settings.services.kafka_sasl_port (0 turns it off).\n"
                           "sasl.enabled.mechanisms=PLAIN\n"
                           "listener.name.sasl_plaintext.plain.sasl.jaas.config="
                           "org.apache.kafka.common.security.plain.PlainLoginModule required "
                           f'user_{user}="{password}";')
        return Template((TEMPLATES / "kafka-server.properties").read_text()).substitute(
            topology=("# Single-node KRaft: this JVM is both broker and controller." if self.node is None else
                      f"# Node {self.node} of a {self.svc.kafka_cluster_nodes}-node KRaft cluster: "
                      "each JVM is both broker and controller."),
            node_id=self.node or 1,
            voters=self.voters(),
            kafka_port=self.port,
            controller_port=self.controller_port,
            data_dir=self.data_dir,
            replication=replication_lines(1 if self.node is None else self.svc.kafka_cluster_nodes),
            num_partitions=self.settings.topic_partitions,
            message_max_bytes=self.settings.kafka_message_bytes,
            sasl_listener=sasl_listener,
            sasl_config=sasl_config,
        )

    def voters(self) -> str:
        if self.node is None:
            return f"1@127.0.0.1:{self.controller_port}"
        return ",".join(f"{n}@127.0.0.1:{cluster_ports(self.svc, n)[1]}"
                        for n in range(1, self.svc.kafka_cluster_nodes + 1))

    def sasl_credentials(self) -> tuple[str, str]:
        """The SASL listener's user and password, made once per state dir
        (owner-only file) so it is never a default anyone can guess."""
        path = self.home / "sasl.password"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(24))
        return SASL_USER, path.read_text().strip()

    def render_log4j(self) -> str:
        return Template((TEMPLATES / "kafka-log4j2.xml").read_text()).substitute(logs_dir=self.logs_dir)

    def jvm_args(self) -> list[str]:
        heap = min(self.svc.kafka_heap_mb if self.node is None else self.svc.kafka_cluster_heap_mb,
                   1024)  # a dev broker never needs more than 1 GiB
        return [
            f"-Xmx{heap}m", f"-Xms{heap}m", *PERFORMANCE_OPTS,
            f"-Xlog:gc*:file={self.logs_dir}/gc.log:time,tags:filecount=4,filesize=20M",
            f"-Dlog4j2.configurationFile={self.log4j_file}",
            f"-Dkafka.logs.dir={self.logs_dir}",
            *jvm.marker_args(self.name, self.state_dir),
        ]

    def command(self, java: str, lib: Path) -> list[str]:
        return [java, *self.jvm_args(), "-cp", jvm.classpath(lib), "kafka.Kafka", str(self.properties_file)]

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    # ------------------------------------------------------------ prepare
    def cluster_id(self) -> str:
        """Kept in the state dir: the storage is formatted with it exactly once."""
        if self.cluster_id_file.exists():
            return self.cluster_id_file.read_text().strip()
        # Same shape as Kafka's Uuid.randomUuid(): 16 random bytes, url-safe
        # base64 without padding, never starting with '-' (CLI-hostile).
        while True:
            cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            if not cid.startswith("-"):
                break
        self.cluster_id_file.parent.mkdir(parents=True, exist_ok=True)
        self.cluster_id_file.write_text(cid + "\n")
        return cid

    def prepare(self, java: str, lib: Path) -> None:
        for d in (self.data_dir, self.logs_dir, self.conf_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.properties_file.write_text(self.render_properties())
        self.properties_file.chmod(0o600)  # holds the SASL listener's password
        self.log4j_file.write_text(self.render_log4j())
        if (self.data_dir / "meta.properties").exists():
            return  # already formatted; formatting again would need a wipe
        cmd = [java, "-Xmx256m", f"-Dlog4j2.configurationFile={self.log4j_file}",
               f"-Dkafka.logs.dir={self.logs_dir}", "-cp", jvm.classpath(lib),
               "kafka.tools.StorageTool", "format", "--ignore-formatted",
               "-t", self.cluster_id(), "-c", str(self.properties_file)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise DeployError(
                f"kafka: formatting storage in {self.data_dir} failed (exit {proc.returncode}). "
                f"If the directory holds data from another cluster, remove {self.home} and retry.\n"
                + (proc.stdout + proc.stderr)[-3000:]
            )

    # ------------------------------------------------------------ health
    def health(self, timeout: float = 5.0) -> tuple[bool, str]:
        """A metadata request through the real client answers."""
        if not jvm.port_open(self.port):
            return False, f"nothing listening on 127.0.0.1:{self.port}"
        from confluent_kafka.admin import AdminClient  # heavy import; only when checking

        admin = AdminClient({
            "bootstrap.servers": f"127.0.0.1:{self.port}",
            "socket.timeout.ms": int(timeout * 1000),
            "log_level": 0,  # librdkafka would print connect errors to stderr while the broker boots
        })
        try:
            md = admin.list_topics(timeout=timeout)
        except Exception as exc:  # KafkaException while the broker is still starting
            return False, f"metadata request failed: {exc}"
        if self.node is not None and self.node not in md.brokers:
            # Its port answers from the others' metadata before it has joined
            # (registered and unfenced); until then it leads nothing.
            return False, f"node {self.node} not yet among the live brokers {sorted(md.brokers)}"
        return True, f"{len(md.brokers)} broker(s), {len(md.topics)} topic(s)"
