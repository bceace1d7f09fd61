"""Errors raised by ``deploy``.

Every message says what to do next, because these surface verbatim in the
``murmur services`` CLI.
"""

from __future__ import annotations


class DeployError(RuntimeError):
    """Root of every error raised while fetching, starting or stopping services."""


class JavaMissing(DeployError):
    """No usable ``java`` (JDK 17+) found."""


class MavenMissing(DeployError):
    """``mvn`` is needed to fetch the service jars and is not on PATH."""


class FetchFailed(DeployError):
    """Maven ran but did not produce the jars."""


class NpmMissing(DeployError):
    """``npm`` is needed to fetch a package and is not on PATH."""


class ChecksumMismatch(FetchFailed):
    """A fetched file is not the one pinned by its sha256."""


class PortInUse(DeployError):
    """A port a service needs is held by a process that is not ours."""

    def __init__(self, service: str, port: int, env_var: str) -> None:
        self.service, self.port, self.env_var = service, port, env_var
        super().__init__(
            f"{service}: port {port} on 127.0.0.1 is already in use by another process "
            f"(not one started by murmur). Stop that process, or pick another port with "
            f"{env_var}=<free port> (environment or murmur.toml)."
        )


class StartFailed(DeployError):
    """A service did not come up; carries the log file and its tail."""

    def __init__(self, service: str, reason: str, log_file: object, tail: str) -> None:
        self.service, self.log_file, self.tail = service, log_file, tail
        super().__init__(
            f"{service}: {reason}. See {log_file}; last lines:\n{tail or '(log is empty)'}"
        )


class StartTimeout(StartFailed):
    """The process kept running but never answered its health check in time."""


class ProcessExited(StartFailed):
    """The JVM died while starting (bad flag, bad config, port race...)."""
