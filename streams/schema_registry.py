"""A small Confluent Schema Registry client (REST API v1) over httpx.

Only what the serde needs: register a schema under a subject to get its id,
and fetch a schema by id. Both are cached for the life of the process.
"""

from __future__ import annotations

import json

import httpx

from streams.errors import ServiceUnavailable

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class SchemaRegistry:
    def __init__(self, url: str, *, client: httpx.Client | None = None) -> None:
        self._url = url.rstrip("/")
        self._http = client or httpx.Client(timeout=10.0)
        self._ids: dict[tuple[str, str], int] = {}
        self._schemas: dict[int, dict] = {}

    def id_for(self, subject: str, schema: dict) -> int:
        text = json.dumps(schema, sort_keys=True)
        key = (subject, text)
        if key not in self._ids:
            try:
                resp = self._http.post(
                    f"{self._url}/subjects/{subject}/versions",
                    content=json.dumps({"schema": text}),
                    headers={"Content-Type": CONTENT_TYPE},
                )
                resp.raise_for_status()
            except httpx.HTTPError as exc:
                raise ServiceUnavailable(f"schema registry {self._url}: cannot register {subject}: {exc}") from None
            self._ids[key] = int(resp.json()["id"])
            self._schemas.setdefault(self._ids[key], schema)
        return self._ids[key]

    def schema_for(self, schema_id: int) -> dict:
        if schema_id not in self._schemas:
            try:
                resp = self._http.get(f"{self._url}/schemas/ids/{schema_id}")
                resp.raise_for_status()
            except httpx.HTTPError as exc:
                raise ServiceUnavailable(f"schema registry {self._url}: schema id {schema_id}: {exc}") from None
            self._schemas[schema_id] = json.loads(resp.json()["schema"])
        return self._schemas[schema_id]
