"""A Python client of the read model, for a simulation that wants its
agents' memory back at each step (see docs/context.md).

    from api.client import MurmurClient

    with MurmurClient("http://127.0.0.1:8080") as murmur:
        block = murmur.context("town-hall", "agent-7", "the council's budget vote", budget=400)
        prompt = block["text"] + "\\n\\n" + step_prompt

Errors are :class:`ReadModelError` with the HTTP status and the API's detail.
"""

from __future__ import annotations

from typing import Any, Iterable

import httpx


class ReadModelError(RuntimeError):
    def __init__(self, status: int, detail: Any, url: str) -> None:
        super().__init__(f"{url}: HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class MurmurClient:
    def __init__(self, base_url: str = "http://127.0.0.1:8080", *, api_key: str | None = None,
                 timeout: float = 30.0, transport: httpx.BaseTransport | None = None, http: Any = None) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        # ``http``: a ready client with httpx's request() (the tests pass the
        # app's own TestClient, whose transport belongs to httpx2 once that
        # is installed, so it cannot be lent to an httpx client).
        self._owned = http is None
        self._http = http if http is not None else httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport)

    def context(self, sim: str, agent: str, query: str, *, budget: int = 512, top_k: int = 10,
                include_public: bool = True, half_life_s: float = 3600.0) -> dict:
        """One agent's memory block (``GET .../agents/{agent}/context``)."""
        return self._call("GET", f"/simulations/{sim}/agents/{agent}/context",
                          params={"query": query, "budget": budget, "top_k": top_k,
                                  "include_public": str(include_public).lower(), "half_life_s": half_life_s})

    def contexts(self, sim: str, asks: Iterable[tuple[str, str]], *, budget: int = 512, top_k: int = 10,
                 include_public: bool = True, half_life_s: float = 3600.0) -> dict:
        """Many agents' blocks in one request (``POST /simulations/{sim}/context``):
        ``asks`` is (agent id, query) pairs, at most 1,000."""
        body = {"agents": [{"agent_id": a, "query": q} for a, q in asks], "budget": budget, "top_k": top_k,
                "include_public": include_public, "half_life_s": half_life_s}
        return self._call("POST", f"/simulations/{sim}/context", json=body)

    def retrieve(self, sim: str, agent: str, query: str, **options: Any) -> list[dict]:
        """Ranked memories with their score components (``POST .../retrieve``)."""
        return self._call("POST", f"/simulations/{sim}/agents/{agent}/retrieve", json={"query": query, **options})

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        resp = self._http.request(method, path, **kw)
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("detail", resp.text)
            except ValueError:
                detail = resp.text
            raise ReadModelError(resp.status_code, detail, str(resp.request.url))
        return resp.json()

    def close(self) -> None:
        if self._owned:
            self._http.close()

    def __enter__(self) -> "MurmurClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
