"""Local Kafka + Cassandra for development and tests, run from Maven Central
jars on loopback (no Docker), and on request a Qdrant server from its pinned
release binary. Public surface: ``deploy.local``."""

from deploy.exceptions import (
    ChecksumMismatch, DeployError, FetchFailed, JavaMissing, MavenMissing, NpmMissing, PortInUse, ProcessExited,
    StartFailed, StartTimeout,
)
from deploy.local import KNOWN, SERVICES, down, fetch, restart, status, up

__all__ = [
    "SERVICES", "KNOWN", "fetch", "up", "down", "status", "restart",
    "DeployError", "JavaMissing", "MavenMissing", "NpmMissing", "PortInUse", "FetchFailed",
    "ChecksumMismatch", "StartFailed", "StartTimeout", "ProcessExited",
]
