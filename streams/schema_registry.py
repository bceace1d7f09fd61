"""Confluent Schema Registry REST client (API v1) over httpx.

Why not ``confluent_kafka.schema_registry.SchemaRegistryClient``: in
confluent-kafka 2.16.1 importing that package (client or serializers) needs
``authlib`` (>= 1.8) and ``cachetools`` (its ``schemaregistry``/``avro``
extras), which are not among Murmur's locked dependencies. Its Avro
serializers would not fit either: they encode with their own per-call
schema handling, while Murmur's serde (streams/serde.py) encodes with
fastavro schemas parsed once and caches the 5-byte Confluent header per
(topic, type), which keeps the registry off the hot path entirely. The wire
format is the same (magic byte 0, 4-byte big-endian id, Avro binary body), so
either side can read the other's records.

Only what Murmur needs: register a schema under a subject (setting the
subject's compatibility level first), look a schema up by id, and read a
subject's compatibility back. Registrations and lookups are cached for the
life of the process.
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from urllib.parse import quote

import httpx

from streams.errors import ConfigError, SchemaRejected, ServiceUnavailable, UnknownSchemaId

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
# Answers are read by HTTP status (409 incompatible, 422 invalid, 404 not
# found), which Confluent and Apicurio's ccompat API share; their bodies'
# "error_code" differ (Apicurio sends 0 for an incompatible schema).


def basic_auth(user_info: str) -> tuple[str, str]:
    """``user:password`` (librdkafka's ``basic.auth.user.info``) as a pair."""
    user, sep, password = user_info.partition(":")
    if not sep or not user:
        raise ConfigError("MURMUR_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO must be 'user:password'")
    return user, password


class SchemaRegistry:
    def __init__(self, url: str, *, compatibility: str | None = None, auth: tuple[str, str] | None = None,
                 ssl_ca: Path | None = None, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._url = url.rstrip("/")
        self._compatibility = compatibility
        verify: ssl.SSLContext | bool = True
        if ssl_ca is not None:
            if not Path(ssl_ca).is_file():
                raise ConfigError(f"MURMUR_SCHEMA_REGISTRY_SSL_CA: {ssl_ca} is not a file")
            verify = ssl.create_default_context(cafile=str(ssl_ca))
        self._http = httpx.Client(timeout=timeout, auth=auth, verify=verify, transport=transport,
                                  headers={"Accept": CONTENT_TYPE})
        self._ids: dict[tuple[str, str], int] = {}
        self._schemas: dict[int, dict] = {}
        self._configured: set[str] = set()

    @classmethod
    def from_settings(cls, settings) -> "SchemaRegistry":
        info = settings.schema_registry_basic_auth_user_info
        return cls(settings.schema_registry_url, compatibility=settings.schema_registry_compatibility,
                   auth=basic_auth(info.get_secret_value()) if info is not None else None,
                   ssl_ca=settings.schema_registry_ssl_ca)

    # -- HTTP ---------------------------------------------------------------
    def _call(self, method: str, path: str, what: str, body: dict | None = None) -> httpx.Response:
        try:
            return self._http.request(method, f"{self._url}{path}", headers={"Content-Type": CONTENT_TYPE},
                                      content=json.dumps(body) if body is not None else None)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"schema registry {self._url}: {what}: {type(exc).__name__}: {exc}") from None

    def _fail(self, resp: httpx.Response, what: str) -> None:
        if resp.status_code in (401, 403):
            raise ConfigError(f"schema registry {self._url}: {what}: HTTP {resp.status_code} (check "
                              "MURMUR_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO)")
        raise ServiceUnavailable(f"schema registry {self._url}: {what}: HTTP {resp.status_code} {_message(resp)}")

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
            resp = self._call("POST", f"/subjects/{quote(subject, safe='')}/versions", what, {"schema": text})
            if resp.status_code == 409:
                raise SchemaRejected(f"schema registry {self._url} refused {schema.get('name')} under subject "
                                     f"{subject}: incompatible with its registered versions ({_message(resp)})")
            if resp.status_code == 422:
                raise SchemaRejected(f"schema registry {self._url} refused {schema.get('name')} under subject "
                                     f"{subject}: invalid schema ({_message(resp)})")
            if resp.status_code != 200:
                self._fail(resp, what)
            self._ids[key] = int(resp.json()["id"])
            self._schemas.setdefault(self._ids[key], schema)
        return self._ids[key]

    def schema_for(self, schema_id: int) -> dict:
        if schema_id not in self._schemas:
            what = f"looking up schema id {schema_id}"
            resp = self._call("GET", f"/schemas/ids/{schema_id}", what)
            if resp.status_code == 404:
                raise UnknownSchemaId(f"schema id {schema_id} is not in the schema registry {self._url} "
                                      f"({_message(resp)})")
            if resp.status_code != 200:
                self._fail(resp, what)
            self._schemas[schema_id] = json.loads(resp.json()["schema"])
        return self._schemas[schema_id]

    # -- compatibility --------------------------------------------------------
    def set_compatibility(self, subject: str, level: str) -> None:
        what = f"setting compatibility {level} on {subject}"
        resp = self._call("PUT", f"/config/{quote(subject, safe='')}", what, {"compatibility": level})
        if resp.status_code != 200:
            self._fail(resp, what)
        self._configured.add(subject)

    def compatibility(self, subject: str) -> str | None:
        """The level set on ``subject`` itself; None when it has none of its own."""
        what = f"reading the compatibility of {subject}"
        resp = self._call("GET", f"/config/{quote(subject, safe='')}", what)
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            self._fail(resp, what)
        return resp.json().get("compatibilityLevel")

    def close(self) -> None:
        self._http.close()


def _message(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200]
    if isinstance(body, dict):
        return f"error {body.get('error_code', '?')}: {body.get('message', '')}"
    return str(body)[:200]
