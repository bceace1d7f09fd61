"""Errors as RFC 9457 problem details, and the request body limit.

Every error the API answers is ``application/problem+json``: ``type``
(``about:blank``: the status says it all), ``title`` (the status phrase),
``status``, ``detail`` (what was wrong, and where) and ``instance`` (the
path); a validation error adds ``errors``, one entry per bad field.

The body limit is an ASGI wrapper around ``receive``: it counts the bytes as
they arrive, so a chunked body (no Content-Length) is cut off at the limit
too instead of being read in full.
"""

from __future__ import annotations

from http import HTTPStatus

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

PROBLEM_JSON = "application/problem+json"


def problem(status: int, detail: str, *, instance: str | None = None, headers: dict | None = None,
            **extensions) -> JSONResponse:
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail}
    if instance is not None:
        body["instance"] = instance
    return JSONResponse(status_code=status, content={**body, **extensions}, headers=headers, media_type=PROBLEM_JSON)


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return problem(exc.status_code, detail, instance=request.url.path, headers=getattr(exc, "headers", None))


async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    # The default handler echoes the input back, which fails on values JSON
    # cannot carry (1e999 parses to inf): say where and what, only.
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
    where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:3])
    return problem(422, f"the request is not valid: {where}" if where else "the request is not valid",
                   instance=request.url.path, errors=errors)


class BodyLimit:
    """Refuses bodies over ``max_bytes`` with 413, by Content-Length when it
    is sent and by counting otherwise."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await problem(413, f"request body over {self.max_bytes} bytes",
                                 instance=scope.get("path"))(scope, receive, send)
        seen, refused = 0, False

        async def counted():
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # Answer here and tell the app the client left: raising
                    # instead would reach FastAPI's body parsing wrapped in a
                    # task group's error (any middleware's), and become a 400.
                    refused = True
                    await problem(413, f"request body over {self.max_bytes} bytes",
                                  instance=scope.get("path"))(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def unless_refused(message):
            if not refused:  # the app's own answer to the "disconnect" goes nowhere
                await send(message)

        await self.app(scope, counted, unless_refused)


def problem_openapi(schema: dict) -> dict:
    """Documents every 4xx/5xx response as ``application/problem+json`` of
    the ``Problem`` schema (FastAPI would say application/json)."""
    for path in schema.get("paths", {}).values():
        for op in path.values():
            for status, response in op.get("responses", {}).items():
                content = response.get("content", {})
                ref = next(iter(content.values()), {}).get("schema", {}).get("$ref", "")
                # /health's 503 is its own report, not a problem: left as it is.
                if status[0] in "45" and (not content or ref.endswith(("/Problem", "/HTTPValidationError"))):
                    response["content"] = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for unused in ("HTTPValidationError", "ValidationError"):
        schema.get("components", {}).get("schemas", {}).pop(unused, None)
    return schema
