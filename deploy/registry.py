"""Apicurio Registry as a single loopback node, for its Confluent-compatible
API (``/apis/ccompat/v7``), with in-memory H2 storage: subjects live as long
as the process.

Apicurio publishes its application to Maven Central as plain jars, not as a
runnable Quarkus build, so we build it: a generated pom whose parent is
Apicurio's own (every version pinned as Apicurio released it) runs the
``quarkus-maven-plugin`` over ``apicurio-registry-app``; the result,
``quarkus-app/quarkus-run.jar``, is cached under
``cache_dir/maven/registry-<version>`` and launched with ``java -jar``.

Why 2.4.2.Final: of the versions on Central, 3.x lacks several of Apicurio's
own modules (``apicurio-registry-schema-util-*``, ``-contracts-rules``,
``-config-*``) and the Quarkus 3.33.3.1 extensions it was built on, and 2.5/2.6
lack ``apicurio-common-app-components-*``; 2.4.2 needs only the two
stand-ins the pom template describes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from string import Template
from typing import Callable

from deploy import jvm
from deploy.exceptions import FetchFailed
from deploy.maven import find_mvn

TEMPLATES = Path(__file__).parent / "templates"
EVERIT_VERSION = "1.14.2"  # what Apicurio 2.4.2 declares (org.everit.json.schema.version)
CCOMPAT = "/apis/ccompat/v7"
MARKER = ".built.json"  # written last: a cache dir without it is a half build
# Apicurio's parent pom binds plugins that need its source tree (checkstyle's
# suppressions, license headers) or do nothing here (javadoc, tests).
SKIPS = ["-DskipTests", "-Dcheckstyle.skip", "-Denforcer.skip", "-Dlicense.skip", "-Dmaven.javadoc.skip",
         "-Dmaven.source.skip", "-Dquarkus.package.type=fast-jar"]


class Registry:
    name = "registry"
    runtime = "quarkus"  # not a plain-classpath JVM: the facade goes through fetch()/command()
    stop_timeout_s = 20.0  # Quarkus stops in about a second on SIGTERM

    def __init__(self, settings) -> None:
        self.settings = settings
        self.svc = settings.services
        self.state_dir = Path(settings.state_dir).resolve()
        self.home = self.state_dir / "registry"
        self.logs_dir = self.home / "logs"
        self.pid_file = self.home / "registry.pid"
        # Quarkus logs to the console only: one file is both the log and stdout.
        self.log_file = self.stdout_file = self.logs_dir / "registry.log"
        self.port = self.svc.registry_port
        self.cache = Path(settings.cache_dir).expanduser().resolve() / "maven" / f"registry-{self.svc.registry_version}"
        self.runner = self.cache / "quarkus-app" / "quarkus-run.jar"

    @property
    def url(self) -> str:
        """What MURMUR_SCHEMA_REGISTRY_URL should be to use this registry."""
        return f"http://127.0.0.1:{self.port}{CCOMPAT}"

    # ------------------------------------------------------------ config
    def ports(self) -> list[tuple[int, str]]:
        return [(self.svc.registry_port, "MURMUR_SERVICES__REGISTRY_PORT")]

    def fingerprint(self) -> jvm.Fingerprint:
        return jvm.jvm_fingerprint(self.name, self.state_dir)

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def command(self, runner: Path) -> list[str]:
        java = jvm.find_java()
        return [
            java, f"-Xmx{self.svc.registry_heap_mb}m", *jvm.marker_args(self.name, self.state_dir),
            "-Dquarkus.http.host=127.0.0.1", f"-Dquarkus.http.port={self.port}",
            # In memory whatever profile the build baked in: nothing to clean up.
            "-Dquarkus.datasource.db-kind=h2", "-Dquarkus.datasource.jdbc.url=jdbc:h2:mem:registry_db",
            "-Dregistry.ui.features.readOnly=true", "-jar", str(runner),
        ]

    # ------------------------------------------------------------ fetch + prepare
    def is_built(self) -> bool:
        try:
            marker = json.loads((self.cache / MARKER).read_text())
        except (OSError, ValueError):
            return False
        return marker.get("version") == self.svc.registry_version and self.runner.is_file()

    def fetch(self, log: Callable[[str], None] = print) -> Path:
        """The built runner jar from the cache, built first if needed."""
        if self.is_built():
            return self.runner
        java = jvm.find_java()
        jvm.check_java(java)
        mvn = find_mvn()
        version = self.svc.registry_version
        build = self.cache / "build"
        shutil.rmtree(build, ignore_errors=True)
        (self.cache / MARKER).unlink(missing_ok=True)
        (build / "src/main/java/murmur/registry").mkdir(parents=True)
        (build / "src/main/resources").mkdir(parents=True)
        (build / "pom.xml").write_text(Template((TEMPLATES / "registry-pom.xml").read_text()).substitute(
            version=version, everit_version=EVERIT_VERSION))
        shutil.copy(TEMPLATES / "registry-ConfigIndex.java", build / "src/main/java/murmur/registry/ConfigIndex.java")
        shutil.copy(TEMPLATES / "registry-application.properties", build / "src/main/resources/application.properties")
        log(f"registry: building Apicurio Registry {version} (Quarkus) from Maven Central into {self.cache} ...")
        started = time.monotonic()
        cmd = [mvn, "-B", "-q", "-f", str(build / "pom.xml"), "package", *SKIPS]
        env = {**os.environ, "JAVA_HOME": str(Path(os.path.realpath(java)).parent.parent)}
        try:
            proc = subprocess.run(cmd, cwd=build, capture_output=True, text=True, timeout=1800, env=env)
        except subprocess.TimeoutExpired as exc:
            raise FetchFailed(f"registry: mvn did not finish within 30 minutes ({' '.join(cmd)}).") from exc
        built = build / "target" / "quarkus-app"
        if proc.returncode != 0 or not (built / "quarkus-run.jar").is_file():
            output = (proc.stdout + proc.stderr).strip().splitlines()[-30:]
            raise FetchFailed(
                f"registry: `{' '.join(cmd)}` failed (exit {proc.returncode}). Check network access to "
                "Maven Central (or a mirror in ~/.m2/settings.xml) and settings.services.registry_version. "
                "Maven said:\n" + "\n".join(output))
        shutil.rmtree(self.cache / "quarkus-app", ignore_errors=True)
        built.rename(self.cache / "quarkus-app")
        shutil.rmtree(build, ignore_errors=True)
        (self.cache / MARKER).write_text(json.dumps(
            {"version": version, "built_at": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=1))
        log(f"registry: built in {time.monotonic() - started:.1f}s")
        return self.runner

    def prepare(self, runner: Path) -> None:
        self.logs_dir.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------ health
    def health(self, timeout: float = 5.0) -> tuple[bool, str]:
        """The Confluent-compatible API lists subjects."""
        if not jvm.port_open(self.port):
            return False, f"nothing listening on 127.0.0.1:{self.port}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{CCOMPAT}/subjects", timeout=timeout) as resp:
                subjects = json.loads(resp.read())
        except (OSError, ValueError) as exc:  # URLError, reset or a half-started server's error page
            return False, f"GET {CCOMPAT}/subjects failed: {exc}"
        if not isinstance(subjects, list):
            return False, f"port {self.port} answers but not as a schema registry: {subjects!r:.200}"
        return True, f"{len(subjects)} subject(s) at {self.url}"
