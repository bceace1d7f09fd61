"""Errors of the platform layer: one root, one line each."""

from __future__ import annotations


class MurmurError(Exception):
    """Root of every error Murmur raises on purpose."""


class ConfigError(MurmurError): ...


class ContractError(MurmurError):
    """Input that breaks the event contract; carries the offending field."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class DecodeError(ContractError): ...


class EncodeError(ContractError): ...


class ServiceUnavailable(MurmurError): ...


class SchemaRejected(MurmurError):
    """The schema registry refused a schema (incompatible or invalid): a deployment problem, not bad input."""


class UnknownSchemaId(MurmurError):
    """A Confluent-framed record names a schema id the registry does not know."""
