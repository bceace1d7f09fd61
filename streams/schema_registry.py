"""The schema registry through confluent-kafka's own client
(``confluent_kafka.schema_registry.SchemaRegistryClient``, Confluent's REST
API v1; Apicurio serves the same under ``/apis/ccompat/v7``).

What Murmur adds on top: the subject's compatibility level set before its
first registration (MURMUR_SCHEMA_REGISTRY_COMPATIBILITY), settings for
basic auth and a CA file, and the registry's answers turned into Murmur's
errors (refused, unknown id, away, not allowed).

Records are encoded by Murmur's serde (streams/serde.py) with fastavro
schemas parsed once and the 5-byte Confluent header cached per (topic,
type), so the registry is off the hot path. The wire format is Confluent's
own (magic byte 0, 4-byte big-endian id, Avro binary body): confluent-kafka's
``AvroSerializer``/``AvroDeserializer`` and Murmur's serde read each other's
records (tests/integration/test_schema_registry.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from streams.errors import ConfigError, SchemaRejected, ServiceUnavailable, UnknownSchemaId


def basic_auth(user_info: str) -> tuple[str, str]:
    """``user:password`` (librdkafka's ``basic.auth.user.info``) as a pair."""
    user, sep, password = user_info.partition(":")
    if not sep or not user:
        raise ConfigError("MURMUR_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO must be 'user:password'")
    return user, password


def client_conf(url: str, *, auth: tuple[str, str] | None = None, ssl_ca: Path | None = None,
                timeout: float = 10.0) -> dict:
    """Settings as SchemaRegistryClient's configuration."""
    conf = {"url": url.rstrip("/"), "timeout": timeout}
    if auth is not None:
        conf["basic.auth.user.info"] = f"{auth[0]}:{auth[1]}"
    if ssl_ca is not None:
        if not Path(ssl_ca).is_file():
            raise ConfigError(f"MURMUR_SCHEMA_REGISTRY_SSL_CA: {ssl_ca} is not a file")
        conf["ssl.ca.location"] = str(ssl_ca)
    return conf


class SchemaRegistry:
    """What the serde asks of a registry: an id for a schema under a subject,
    a schema for an id. Both cached for the life of the process (here, so the
    serde's dict schemas need no re-parsing, and inside Confluent's client)."""

    def __init__(self, url: str, *, compatibility: str | None = None, auth: tuple[str, str] | None = None,
                 ssl_ca: Path | None = None, timeout: float = 10.0,
                 client: SchemaRegistryClient | None = None) -> None:
        self._url = url.rstrip("/")
        self._compatibility = compatibility
        self._client = client or SchemaRegistryClient(client_conf(url, auth=auth, ssl_ca=ssl_ca, timeout=timeout))
        self._ids: dict[tuple[str, str], int] = {}
        self._schemas: dict[int, dict] = {}
        self._configured: set[str] = set()

    @classmethod
    def from_settings(cls, settings) -> "SchemaRegistry":
        info = settings.schema_registry_basic_auth_user_info
        return cls(settings.schema_registry_url, compatibility=settings.schema_registry_compatibility,
                   auth=basic_auth(info.get_secret_value()) if info is not None else None,
                   ssl_ca=settings.schema_registry_ssl_ca)

    def _call(self, what: str, call, *args, **kwargs):
        try:
            return call(*args, **kwargs)
        except SchemaRegistryError as exc:
            if exc.http_status_code in (401, 403):
                raise ConfigError(f"schema registry {self._url}: {what}: HTTP {exc.http_status_code} (check "
                                  "MURMUR_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO)") from None
            raise
        except Exception as exc:  # the HTTP client's own errors: connect, timeout, TLS
            raise ServiceUnavailable(f"schema registry {self._url}: {what}: {type(exc).__name__}: {exc}") from None

    # -- the serde's interface ----------------------------------------------
    def id_for(self, subject: str, schema: dict) -> int:
        text = json.dumps(schema, sort_keys=True)
        key = (subject, text)
        if key not in self._ids:
            if self._compatibility and subject not in self._configured:
                # Before the first registration, so the very first version
                # already lives under the level schemas/compat.py checks.
                self.set_compatibility(subject, self._compatibility)
            what = f"registering {schema.get('name')} under {subject}"
            try:
                schema_id = self._call(what, self._client.register_schema, subject, Schema(text, "AVRO"))
            except SchemaRegistryError as exc:
                if exc.http_status_code in (409, 422):
                    kind = "incompatible with its registered versions" if exc.http_status_code == 409 else "invalid schema"
                    raise SchemaRejected(f"schema registry {self._url} refused {schema.get('name')} under subject "
                                         f"{subject}: {kind} ({_message(exc)})") from None
                raise ServiceUnavailable(f"schema registry {self._url}: {what}: {_message(exc)}") from None
            self._ids[key] = int(schema_id)
            self._schemas.setdefault(self._ids[key], schema)
        return self._ids[key]

    def schema_for(self, schema_id: int) -> dict:
        if schema_id not in self._schemas:
            what = f"looking up schema id {schema_id}"
            try:
                found = self._call(what, self._client.get_schema, schema_id)
            except SchemaRegistryError as exc:
                if exc.http_status_code == 404:
                    raise UnknownSchemaId(f"schema id {schema_id} is not in the schema registry {self._url} "
                                          f"({_message(exc)})") from None
                raise ServiceUnavailable(f"schema registry {self._url}: {what}: {_message(exc)}") from None
            self._schemas[schema_id] = json.loads(found.schema_str)
        return self._schemas[schema_id]

    # -- compatibility --------------------------------------------------------
    def set_compatibility(self, subject: str, level: str) -> None:
        what = f"setting compatibility {level} on {subject}"
        try:
            self._call(what, self._client.set_compatibility, subject_name=subject, level=level)
        except SchemaRegistryError as exc:
            raise ServiceUnavailable(f"schema registry {self._url}: {what}: {_message(exc)}") from None
        self._configured.add(subject)

    def compatibility(self, subject: str) -> str | None:
        """The level set on ``subject`` itself; None when it has none of its own."""
        what = f"reading the compatibility of {subject}"
        try:
            return self._call(what, self._client.get_compatibility, subject_name=subject)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                return None
            raise ServiceUnavailable(f"schema registry {self._url}: {what}: {_message(exc)}") from None

    def close(self) -> None:
        self._client.close()


def _message(exc: SchemaRegistryError) -> str:
    return f"HTTP {exc.http_status_code}, error {exc.error_code}: {exc.error_message}"
