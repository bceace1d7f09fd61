"""Optional API key. When ``MURMUR_API_KEY_SHA256`` holds the SHA-256 (hex)
of a key, every request but ``/health``, the docs and the monitor page
(static HTML) must carry the key in ``X-API-Key``
(or ``Authorization: Bearer <key>``). Only the hash is stored; the comparison
is constant-time."""

from __future__ import annotations

import hashlib
import hmac
import re

from fastapi import HTTPException, Request

# Liveness probes and the API's own description carry no data; the docs'
# "Authorize" button (security schemes below) lets a reader send the key.
OPEN_PATHS = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
# The monitor page is static HTML; the stream it reads is what needs the key.
OPEN_PATTERN = re.compile(r"^/simulations/[^/]+/monitor$")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def presented_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


def check(request: Request, expected_sha256: str | None) -> None:
    path = request.url.path
    if not expected_sha256 or path in OPEN_PATHS or OPEN_PATTERN.match(path):
        return
    key = presented_key(request)
    # Hash first, then compare digests of equal length in constant time.
    if key is None or not hmac.compare_digest(hash_key(key), expected_sha256.lower()):
        raise HTTPException(401, "missing or wrong API key (send it in X-API-Key)", headers={"WWW-Authenticate": "Bearer"})


def document(schema: dict, key_required: bool) -> dict:
    """The OpenAPI security schemes (both ways of sending the key); when a
    key is configured, every operation requires one of them but the open ones."""
    schema.setdefault("components", {})["securitySchemes"] = {
        "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        "Bearer": {"type": "http", "scheme": "bearer"},
    }
    if key_required:
        for path, ops in schema.get("paths", {}).items():
            for op in ops.values():
                open_ = path in OPEN_PATHS or OPEN_PATTERN.match(path.replace("{sim}", "s"))
                op["security"] = [] if open_ else [{"ApiKey": []}, {"Bearer": []}]
    return schema
