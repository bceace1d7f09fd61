"""API keys. A key is required when ``MURMUR_API_KEY_SHA256`` holds the
SHA-256 (hex) of the operator's key, or when ``MURMUR_API_REQUIRE_KEY`` is
true; then every request but ``/health``, the docs and the monitor page
(static HTML) must carry the operator's key or an issued, unrevoked one
(``api/keys.py``, ``murmur api-keys``) in ``X-API-Key`` (or
``Authorization: Bearer <key>``). Only hashes are stored; the comparisons
are constant-time. An issued key limited to some simulations gets 403
elsewhere.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

from fastapi import HTTPException, Request

from api.key_cache import KeyCache
from api.keys import ApiKey, BadKeyFormat, hash_key, key_id_of

# Liveness probes and the API's own description carry no data; the docs'
# "Authorize" button (security schemes below) lets a reader send the key.
OPEN_PATHS = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
# The monitor page is static HTML; the stream it reads is what needs the key.
OPEN_PATTERN = re.compile(r"^/simulations/[^/]+/monitor$")
SIM_PATH = re.compile(r"^/simulations/([^/]+)(/|$)")
__all__ = ["Caller", "document", "hash_key", "identify", "key_required", "presented_key"]


@dataclass(frozen=True)
class Caller:
    """Who sent a request: an issued key, or None (the operator's key, an
    open path, or no key required), which no limit applies to."""
    key: ApiKey | None = None


def key_required(settings) -> bool:
    return bool(settings.api_key_sha256) or settings.api_require_key


def presented_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


def _refused(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def identify(request: Request, settings, keys: KeyCache | None) -> Caller:
    """The caller of a request, or HTTPException 401 (no key, wrong key,
    revoked key) or 403 (a simulation the key may not read)."""
    path = request.url.path
    if not key_required(settings) or path in OPEN_PATHS or OPEN_PATTERN.match(path):
        return Caller()
    key = presented_key(request)
    if key is None:
        raise _refused("missing API key (send it in X-API-Key)")
    digest = hash_key(key)
    # Hash first, then compare digests of equal length in constant time.
    if settings.api_key_sha256 and hmac.compare_digest(digest, settings.api_key_sha256.lower()):
        return Caller()
    try:
        key_id = key_id_of(key)
    except BadKeyFormat:
        raise _refused("wrong API key (send it in X-API-Key)") from None
    issued = await keys.get(key_id) if keys is not None else None
    if issued is None or not hmac.compare_digest(digest, issued.sha256):
        raise _refused("wrong API key (send it in X-API-Key)")
    if issued.revoked:
        raise _refused(f"API key {key_id} was revoked")
    sim = SIM_PATH.match(path)
    if issued.sims and (sim is None or not issued.may_read(sim.group(1))):
        raise HTTPException(403, f"API key {key_id} may read only simulations {', '.join(sorted(issued.sims))}")
    return Caller(issued)


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
