"""Fetch a service's runtime jars from Maven Central with the local ``mvn``.

Maven does the transitive resolution (Cassandra pulls ~100 jars) and its own
~/.m2 cache; we copy the result into ``cache_dir/maven/<name>-<version>/lib``
so the launch classpath is one flat, stable directory.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from xml.sax.saxutils import escape

from deploy.exceptions import FetchFailed, MavenMissing

MARKER = ".fetched.json"  # written last: a dir without it is a half fetch


@dataclass(frozen=True)
class Artifact:
    group: str
    artifact: str
    version: str

    def __str__(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}"


def find_mvn() -> str:
    found = shutil.which("mvn")
    if not found:
        raise MavenMissing(
            "mvn (Apache Maven 3.8+) was not found on PATH; it downloads the Kafka and "
            "Cassandra jars from Maven Central. Install it (Debian/Ubuntu: `apt-get install maven`; "
            "macOS: `brew install maven`) and retry."
        )
    return found


def render_pom(name: str, artifacts: list[Artifact]) -> str:
    deps = "\n".join(
        "    <dependency><groupId>{}</groupId><artifactId>{}</artifactId><version>{}</version></dependency>".format(
            escape(a.group), escape(a.artifact), escape(a.version))
        for a in artifacts
    )
    # packaging=pom: nothing to compile, only the dependency graph matters.
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>murmur.local</groupId>
  <artifactId>{escape(name)}-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
{deps}
  </dependencies>
</project>
"""


def is_fetched(dest: Path, artifacts: list[Artifact]) -> bool:
    try:
        marker = json.loads((dest / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker.get("artifacts") == [str(a) for a in artifacts] and any((dest / "lib").glob("*.jar"))


def fetch(name: str, artifacts: list[Artifact], dest: Path, *,
          log: Callable[[str], None] = print) -> Path:
    """Ensure ``dest/lib`` holds the jars of ``artifacts``; returns the lib dir.

    Idempotent: a complete fetch (marker present, same artifact list) returns
    immediately. Otherwise jars go to ``lib.partial`` and are renamed into
    place only after Maven succeeds, so an interrupted fetch is redone.
    """
    lib = dest / "lib"
    if is_fetched(dest, artifacts):
        return lib
    mvn = find_mvn()
    dest.mkdir(parents=True, exist_ok=True)
    (dest / MARKER).unlink(missing_ok=True)
    (dest / "pom.xml").write_text(render_pom(name, artifacts))
    partial = dest / "lib.partial"
    shutil.rmtree(partial, ignore_errors=True)
    log(f"{name}: fetching {', '.join(map(str, artifacts))} from Maven Central into {lib} ...")
    started = time.monotonic()
    cmd = [mvn, "-B", "-q", "-f", str(dest / "pom.xml"), "dependency:copy-dependencies",
           f"-DoutputDirectory={partial}", "-DincludeScope=runtime"]
    try:
        proc = subprocess.run(cmd, cwd=dest, capture_output=True, text=True, timeout=1800)
    except subprocess.TimeoutExpired as exc:
        raise FetchFailed(f"{name}: mvn did not finish within 30 minutes ({' '.join(cmd)}).") from exc
    jars = sorted(partial.glob("*.jar"))
    if proc.returncode != 0 or not jars:
        output = (proc.stdout + proc.stderr).strip().splitlines()[-30:]
        raise FetchFailed(
            f"{name}: `{' '.join(cmd)}` failed (exit {proc.returncode}). Check network access to "
            "Maven Central (or a mirror in ~/.m2/settings.xml) and the version in settings.services. "
            "Maven said:\n" + "\n".join(output)
        )
    shutil.rmtree(lib, ignore_errors=True)
    partial.rename(lib)
    (dest / MARKER).write_text(json.dumps(
        {"artifacts": [str(a) for a in artifacts], "jars": len(jars),
         "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=1))
    log(f"{name}: fetched {len(jars)} jars in {time.monotonic() - started:.1f}s")
    return lib
