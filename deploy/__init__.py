"""Local Kafka + Cassandra for development and tests, run from Maven Central
jars on loopback (no Docker). Public surface: ``deploy.local``."""

from deploy.exceptions import (
    DeployError, FetchFailed, JavaMissing, MavenMissing, PortInUse, ProcessExited,
    StartFailed, StartTimeout,
)
from deploy.local import SERVICES, down, fetch, restart, status, up

__all__ = [
    "SERVICES", "fetch", "up", "down", "status", "restart",
    "DeployError", "JavaMissing", "MavenMissing", "PortInUse", "FetchFailed",
    "StartFailed", "StartTimeout", "ProcessExited",
]
