"""Optional API key. When ``MURMUR_API_KEY_SHA256`` holds the SHA-256 (hex)
of a key, every request but ``/health`` and the monitor page (static HTML) must carry the key in ``X-API-Key``
(or ``Authorization: Bearer <key>``). Only the hash is stored; the comparison
is constant-time."""

from __future__ import annotations

import hashlib
import hmac
import re

from fastapi import HTTPException, Request

OPEN_PATHS = frozenset({"/health"})  # liveness probes carry no secrets
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
