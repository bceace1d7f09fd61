"""Awaiting many LLM calls at once."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Iterable


async def together(llm: Any, calls: Iterable[Awaitable], *, return_exceptions: bool = False) -> list:
    """The calls' results in the order given. A backend that waits on a
    server (``llm.waits``, the default) has them overlap, as
    ``asyncio.gather``; one that answers in-process without waiting (the
    deterministic backend) gains nothing from overlap and a task per call
    costs more than its answer, so its calls run one after another, in the
    order gather would have started them."""
    if getattr(llm, "waits", True):
        return await asyncio.gather(*calls, return_exceptions=return_exceptions)
    out = []
    for call in calls:
        try:
            out.append(await call)
        except Exception as exc:
            if not return_exceptions:
                raise
            out.append(exc)
    return out
