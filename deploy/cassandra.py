"""Apache Cassandra 5.0 as a single loopback node, launched from the Maven
artifact ``org.apache.cassandra:cassandra-all`` (no tarball, no bin/cassandra).

The artifact ships neither cassandra.yaml nor logback.xml, and bin/cassandra
+ conf/*.options are what normally supply the JVM flags, so this module
writes both files and rebuilds the flag list from the 5.0 sources.
"""

from __future__ import annotations

import os
from pathlib import Path
from string import Template

from deploy import jvm
from deploy.exceptions import DeployError
from deploy.maven import Artifact

TEMPLATES = Path(__file__).parent / "templates"

# conf/jvm-server.options (cassandra-5.0), "GENERAL JVM SETTINGS", verbatim.
JVM_SERVER_OPTIONS = [
    "-ea",
    "-da:net.openhft...",
    "-XX:+UseThreadPriorities",
    "-XX:+HeapDumpOnOutOfMemoryError",
    "-Xss256k",
    "-XX:+AlwaysPreTouch",
    "-XX:+UseTLAB",
    "-XX:+ResizeTLAB",
    "-XX:+UseNUMA",
    "-XX:+PerfDisableSharedMem",
    "-Djava.net.preferIPv4Stack=true",
]

# conf/jvm17-server.options (cassandra-5.0 branch), GC + JPMS + Netty, verbatim.
# Without the --add-exports/--add-opens, JDK 17 refuses Cassandra's reflective
# access (jamm, Netty, chronicle, internal misc/ref classes) at startup.
JVM17_SERVER_OPTIONS = [
    # G1
    "-XX:+UseG1GC",
    "-XX:+ParallelRefProcEnabled",
    "-XX:MaxTenuringThreshold=1",
    "-XX:G1HeapRegionSize=16m",
    "-XX:G1RSetUpdatingPauseTimePercent=5",
    "-XX:MaxGCPauseMillis=300",
    "-XX:InitiatingHeapOccupancyPercent=70",
    # JPMS
    "-Djdk.attach.allowAttachSelf=true",
    "--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports", "java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
    "--add-exports", "java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports", "java.rmi/sun.rmi.server=ALL-UNNAMED",
    "--add-exports", "java.sql/java.sql=ALL-UNNAMED",
    "--add-exports", "java.base/java.lang.ref=ALL-UNNAMED",
    "--add-exports", "jdk.unsupported/sun.misc=ALL-UNNAMED",
    "--add-exports", "jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
    "--add-exports", "jdk.attach/sun.tools.attach=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.module=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.loader=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.reflect=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.math=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.module=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.util.jar=ALL-UNNAMED",
    "--add-opens", "jdk.management/com.sun.management.internal=ALL-UNNAMED",
    "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens", "java.base/java.io=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens", "jdk.compiler/com.sun.tools.javac=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang=ALL-UNNAMED",
    "--add-opens", "java.base/java.util=ALL-UNNAMED",
    "--add-opens", "java.base/java.nio=ALL-UNNAMED",
    # Netty
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dio.netty.allocator.useCacheForAllThreads=true",
    "-Dio.netty.allocator.maxOrder=11",
]


class Cassandra:
    name = "cassandra"
    stop_timeout_s = 90.0  # shutdown hook drains/flushes memtables; SIGKILL after this

    def __init__(self, settings) -> None:
        self.settings = settings
        self.svc = settings.services
        self.state_dir = Path(settings.state_dir).resolve()
        self.home = self.state_dir / "cassandra"
        self.dirs = {k: self.home / k for k in ("data", "commitlog", "saved_caches", "hints", "cdc_raw")}
        self.logs_dir = self.home / "logs"
        self.conf_dir = self.home / "conf"
        self.yaml_file = self.conf_dir / "cassandra.yaml"
        self.logback_file = self.conf_dir / "logback.xml"
        self.pid_file = self.home / "cassandra.pid"
        self.log_file = self.logs_dir / "system.log"
        self.stdout_file = self.logs_dir / "stdout.log"
        self.port = self.svc.cassandra_cql_port
        self.cache = (Path(settings.cache_dir).expanduser().resolve() / "maven"
                      / f"cassandra-{self.svc.cassandra_version}")

    # ------------------------------------------------------------ config
    def ports(self) -> list[tuple[int, str]]:
        return [(self.svc.cassandra_cql_port, "MURMUR_SERVICES__CASSANDRA_CQL_PORT"),
                (self.svc.cassandra_storage_port, "MURMUR_SERVICES__CASSANDRA_STORAGE_PORT")]

    def artifacts(self) -> list[Artifact]:
        return [Artifact("org.apache.cassandra", "cassandra-all", self.svc.cassandra_version)]

    def render_yaml(self) -> str:
        return Template((TEMPLATES / "cassandra.yaml").read_text()).substitute(
            data_dir=self.dirs["data"],
            commitlog_dir=self.dirs["commitlog"],
            saved_caches_dir=self.dirs["saved_caches"],
            hints_dir=self.dirs["hints"],
            cdc_raw_dir=self.dirs["cdc_raw"],
            storage_port=self.svc.cassandra_storage_port,
            cql_port=self.svc.cassandra_cql_port,
            authenticator="PasswordAuthenticator" if self.svc.cassandra_password_auth else "AllowAllAuthenticator",
        )

    def render_logback(self) -> str:
        return Template((TEMPLATES / "cassandra-logback.xml").read_text()).substitute(logs_dir=self.logs_dir)

    def jvm_args(self, lib: Path) -> list[str]:
        heap = min(self.svc.cassandra_heap_mb, 2048)
        jamm = sorted(lib.glob("jamm-*.jar"))
        if not jamm:
            raise DeployError(f"cassandra: no jamm-*.jar in {lib}; delete {lib.parent} and run `murmur services up` to re-fetch.")
        return [
            *JVM_SERVER_OPTIONS,
            *JVM17_SERVER_OPTIONS,
            # cassandra-env.sh: heap, GC log, jamm agent (measures memtable sizes), OOM policy.
            f"-Xms{heap}m", f"-Xmx{heap}m",
            f"-Xlog:gc=info,heap*=trace,age*=debug,safepoint=info,promotion*=trace:file={self.logs_dir}/gc.log"
            ":time,uptime,pid,tid,level:filecount=10,filesize=10485760",
            f"-javaagent:{jamm[-1]}",
            f"-XX:HeapDumpPath={self.home}",
            "-XX:OnOutOfMemoryError=kill -9 %p",
            # bin/cassandra launch_service.
            f"-Dlogback.configurationFile={self.logback_file}",
            f"-Dcassandra.logdir={self.logs_dir}",
            f"-Dcassandra.storagedir={self.home}",
            "-Dcassandra-foreground=yes",
            f"-Dcassandra.config=file://{self.yaml_file}",
            # Fast single-node start: no gossip settling, fixed token.
            "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            "-Dcassandra.initial_token=0",
            # With PasswordAuthenticator, make the default superuser at once, not after 10 s.
            "-Dcassandra.superuser_setup_delay_ms=0",
            # Skips a ~2 s startup micro-benchmark that estimates per-row memtable
            # overhead (it measured 181 bytes on JDK 17); only feeds flush accounting.
            "-Dcassandra.memtable.row_overhead_size=181",
            # No JMX port (-Dcassandra.jmx.local.port unset): nothing extra to collide with.
            *jvm.marker_args(self.name, self.state_dir),
        ]

    def command(self, java: str, lib: Path) -> list[str]:
        return [java, *self.jvm_args(lib), "-cp", jvm.classpath(lib),
                "org.apache.cassandra.service.CassandraDaemon"]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("MALLOC_ARENA_MAX", "4")  # cassandra-env.sh: bounds glibc off-heap arenas
        return env

    # ------------------------------------------------------------ prepare
    def prepare(self, java: str, lib: Path) -> None:
        for d in (*self.dirs.values(), self.logs_dir, self.conf_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.yaml_file.write_text(self.render_yaml())
        self.logback_file.write_text(self.render_logback())

    def login(self) -> tuple[str, str]:
        """Who the health check logs in as: Murmur's own login when set,
        else the default superuser PasswordAuthenticator creates."""
        st = self.settings
        if st.cassandra_username and st.cassandra_password:
            return st.cassandra_username, st.cassandra_password.get_secret_value()
        return "cassandra", "cassandra"

    # ------------------------------------------------------------ health
    def health(self, timeout: float = 5.0) -> tuple[bool, str]:
        """A CQL session opens and system.local answers."""
        if not jvm.port_open(self.port):
            return False, f"nothing listening on 127.0.0.1:{self.port}"
        # Heavy imports; only when checking.
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import RoundRobinPolicy

        # Explicit protocol v5 and policy: no downgrade/"no policy" warnings on every check.
        profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(), request_timeout=timeout)
        auth = {}
        if self.svc.cassandra_password_auth:
            from cassandra.auth import PlainTextAuthProvider

            auth["auth_provider"] = PlainTextAuthProvider(*self.login())
        cluster = Cluster(
            ["127.0.0.1"], port=self.port, protocol_version=5,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            connect_timeout=timeout, control_connection_timeout=timeout, **auth,
        )
        try:
            session = cluster.connect()
            row = session.execute("SELECT release_version FROM system.local", timeout=timeout).one()
            return True, f"release_version {row.release_version}"
        except Exception as exc:  # NoHostAvailable etc. while still starting
            return False, f"CQL query failed: {exc}"
        finally:
            cluster.shutdown()
