"""Async client of vLLM's OpenAI-compatible API, with structured output.

Calls go, many to a request, to ``/v1/completions`` with a list of prompts
(``batching.py``; ``settings.llm.batch_prompts``), or one by one to the chat
API (``batch_prompts`` 0, or a server without the completions endpoint).
Chat requests ask for structured output through ``response_format`` of type
``json_schema``, which current vLLM documents for the chat API (the old
``guided_json`` extra field was removed in v0.12 and is silently ignored by
newer servers, so it is never sent). Temperature 0 and a fixed seed make
answers as reproducible as the server allows; every answer is parsed and
validated against the schema on receipt (``answers.py``), and an invalid one
counts as a failed attempt. Retries, fallbacks, the concurrency bound and
the LlmCall records live in transport.HttpCaller.
"""

from __future__ import annotations

from typing import Any

from .answers import parse_answer
from .batching import NO_COMPLETIONS, PromptBatcher
from .embedder import Embedder, make_embedder
from .journal import answer_text, fingerprint
from .prompts import Prompt
from .records import LlmResult, OnCall
from .transport import AttemptFailed, HttpCaller


def parse_reply(reply: dict[str, Any], prompt: Prompt) -> tuple[dict[str, Any], dict[str, Any]]:
    """(validated data, usage) from a chat completion, or AttemptFailed."""
    usage = reply.get("usage") or {}
    try:
        choice = reply["choices"][0]
        content = choice["message"]["content"] or ""
    except (KeyError, IndexError, TypeError) as exc:
        raise AttemptFailed("invalid_reply", f"no message in reply: {exc!r}", usage=usage) from exc
    return parse_answer(content, choice.get("finish_reason"), prompt, usage)


class LlmClient:
    """The vLLM backend. Share one per process: it owns the connection pools
    and the ``max_concurrency`` semaphore, so ``asyncio.gather`` over many
    calls keeps at most that many requests in flight."""

    backend = "vllm"

    def __init__(self, settings: Any, on_call: OnCall | None = None, *, embedder: Embedder | None = None,
                 max_retry_after_s: float = 60.0):
        self.llm = getattr(settings, "llm", settings)
        self._caller = HttpCaller(self.llm, on_call, max_retry_after_s=max_retry_after_s)
        self._batcher = PromptBatcher(self._caller, self.llm)
        # The vLLM embedder shares pools, semaphore and records with chat.
        self._embedder = embedder or make_embedder(self.llm, on_call, caller=self._caller)

    @property
    def semaphore(self):
        return self._caller.semaphore

    async def complete_json(self, role: str, prompt: Prompt, *, cache_key: str | None = None,
                            sim_id: str = "", round: int = 0) -> LlmResult:
        key = cache_key or prompt.default_cache_key()

        async def send(cfg, retry):
            # At temperature 0 the same request gives the same invalid
            # answer; a retry shifts the seed so it is not wasted.
            seed = self.llm.seed + retry
            if self._batcher.takes(cfg):
                try:
                    return await self._batcher.complete(cfg, prompt, seed=seed)
                except AttemptFailed as exc:
                    if exc.reason != NO_COMPLETIONS:
                        raise
            body = {
                "model": cfg.model,
                "messages": [
                    {"role": "system", "content": prompt.system},
                    {"role": "user", "content": prompt.user},
                ],
                "temperature": 0,
                "seed": seed,
                "max_tokens": prompt.max_tokens,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": prompt.schema_name, "schema": prompt.schema, "strict": True},
                },
            }
            async with self._caller.slot(cfg) as endpoint:
                reply = await endpoint.post("chat/completions", body, cfg.timeout_s)
            return parse_reply(reply, prompt)

        # The role's own model, not a fallback's: what a replay asks for.
        own = getattr(self.llm, role, None)
        mark = fingerprint(own.model, prompt) if hasattr(own, "model") else ""  # an unknown role fails in run
        data, record = await self._caller.run(role, send, cache_key=key, sim_id=sim_id, round=round,
                                              task=prompt.task, answer_of=lambda d: (mark, answer_text(d)))
        return LlmResult(
            data=data, backend=self.backend, role=role, model=record["model"], status=record["status"],
            attempts=record["attempts"], prompt_tokens=record["prompt_tokens"],
            completion_tokens=record["completion_tokens"], latency_ms=record["latency_ms"], cache_key=key,
            event_id=record["event_id"], record=record,
        )

    async def embed(self, texts: list[str], *, sim_id: str = "", round: int = 0) -> list[list[float]]:
        return await self._embedder.embed(texts, sim_id=sim_id, round=round)

    async def aclose(self) -> None:
        await self._batcher.aclose()
        await self._embedder.aclose()
        await self._caller.aclose()
