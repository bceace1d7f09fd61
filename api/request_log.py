"""One log line per API request, and the request's id.

The id is the caller's ``X-Request-ID`` when it is a plausible id (a proxy
or a client that traces its calls), a new one otherwise; it is echoed in
the response and bound to the log context, so every line logged while the
request runs carries it too. The line says who asked (the client address
and, for an issued key, its id from ``request.state.caller`` as the key
check (api/auth.py) left it; never the key) and how it went.

Outermost middleware: a request refused by the body limit or the key
check is logged like any other. uvicorn's own access log is off
(``murmur api``), so a request is logged once.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from streams import logs

HEADER = b"x-request-id"
# Letters, digits and a few separators: an id is echoed in a header and
# written to the log, so nothing that could split a line or a header.
PLAUSIBLE_ID = re.compile(rb"^[A-Za-z0-9._:/+=-]{1,128}$")
log = logging.getLogger("api.requests")


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name.lower() == HEADER and PLAUSIBLE_ID.match(value):
            return value.decode("ascii")
    return uuid.uuid4().hex


def key_id(scope) -> str | None:
    """The issued key's id, once the key check has identified the caller."""
    caller = (scope.get("state") or {}).get("caller")
    return getattr(getattr(caller, "key", None), "key_id", None)


class RequestLog:
    """ASGI middleware (pure ASGI, so a streamed response is timed to its end)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope.get("headers") or [])
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before responding

        async def send_with_id(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (HEADER, rid.encode("ascii"))]
            await send(message)

        with logs.bound_contextvars(request_id=rid):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                client = scope.get("client")
                log.info("request", extra={
                    "method": scope["method"], "path": scope["path"], "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "client": client[0] if client else None, "api_key_id": key_id(scope)})
