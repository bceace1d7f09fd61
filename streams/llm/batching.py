"""Many calls, one request: vLLM's ``/v1/completions`` with a list of prompts.

A classification call is small (a few hundred prompt tokens, a few dozen
out), so one HTTP request each costs the client and the server more than
the model's work: the client about 0.3 ms of CPU a request, vLLM's HTTP
server a third of its time on small requests. vLLM's completions endpoint
takes a list of prompts, and one structured-output constraint for the whole
request, so calls that share a server, a model, an output schema and a seed
are gathered here for up to ``batch_window_ms`` (or until
``batch_prompts`` have come) and sent as one request; each call gets its own
answer (by the choice's ``index``), checked on its own, and a call whose
answer is invalid is retried alone by the caller's retry loop
(``transport.HttpCaller.run``), as a chat call would be.

The chat template is applied here (``chat_templates.py``). A server without
the completions endpoint (404/405) is remembered, and its calls go one by
one to the chat API from then on.

Token usage comes per request; each call's LlmCall record gets a share in
proportion to its prompt's and its answer's length.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from .answers import Usage, parse_answer
from .chat_templates import render
from .prompts import Prompt
from .transport import AttemptFailed, HttpCaller

log = logging.getLogger(__name__)
NO_COMPLETIONS = "no_completions"


@dataclass
class _Pending:
    prompt: Prompt
    text: str
    future: asyncio.Future


def shares(total: int, weights: list[int]) -> list[int]:
    """``total`` split in proportion to ``weights``, in whole numbers that
    add up to it (largest remainders get the leftover units)."""
    if not weights:
        return []
    whole = sum(weights)
    if whole <= 0:
        weights, whole = [1] * len(weights), len(weights)
    exact = [total * w / whole for w in weights]
    out = [int(x) for x in exact]
    for i in sorted(range(len(exact)), key=lambda i: out[i] - exact[i])[: total - sum(out)]:
        out[i] += 1
    return out


def split_reply(reply: dict[str, Any], pending: list[_Pending]) -> list[tuple[dict, Usage] | AttemptFailed]:
    """Each prompt's parsed answer, or why it has none."""
    usage = reply.get("usage") or {}
    choices = reply.get("choices")
    by_index = {c.get("index"): c for c in choices if isinstance(c, dict)} if isinstance(choices, list) else {}
    texts = [by_index.get(i, {}).get("text") for i in range(len(pending))]
    prompt_share = shares(int(usage.get("prompt_tokens") or 0), [len(p.text) for p in pending])
    answer_share = shares(int(usage.get("completion_tokens") or 0), [len(t or "") for t in texts])
    out: list[tuple[dict, Usage] | AttemptFailed] = []
    for i, (p, text) in enumerate(zip(pending, texts)):
        own = {"prompt_tokens": prompt_share[i], "completion_tokens": answer_share[i]}
        if not isinstance(text, str):
            out.append(AttemptFailed("invalid_reply", f"no answer for prompt {i} of {len(pending)}", usage=own))
            continue
        try:
            out.append(parse_answer(text, by_index[i].get("finish_reason"), p.prompt, own))
        except AttemptFailed as exc:
            out.append(exc)
    return out


class PromptBatcher:
    def __init__(self, caller: HttpCaller, llm: Any) -> None:
        self.caller = caller
        self.max_prompts = llm.batch_prompts
        self.window_s = llm.batch_window_ms / 1000.0
        self.template = llm.chat_template
        self._groups: dict[tuple, list[_Pending]] = {}
        self._chat_only: set[str] = set()
        self._sending: set[asyncio.Task] = set()

    def takes(self, cfg: Any) -> bool:
        """Whether calls to this role's server are batched."""
        return self.max_prompts > 0 and cfg.url not in self._chat_only

    async def complete(self, cfg: Any, prompt: Prompt, *, seed: int) -> tuple[dict, Usage]:
        key = (cfg.url, cfg.api_key, cfg.model, prompt.schema_name, seed, cfg.timeout_s)
        loop = asyncio.get_running_loop()
        pending = _Pending(prompt, render(self.template, prompt.system, prompt.user), loop.create_future())
        group = self._groups.setdefault(key, [])
        group.append(pending)
        if len(group) >= self.max_prompts:
            self._flush(key, cfg, seed)
        elif len(group) == 1:
            loop.call_later(self.window_s, self._flush_if, key, group, cfg, seed)
        return await pending.future

    def _flush_if(self, key: tuple, group: list[_Pending], cfg: Any, seed: int) -> None:
        if self._groups.get(key) is group:  # not sent already for being full
            self._flush(key, cfg, seed)

    def _flush(self, key: tuple, cfg: Any, seed: int) -> None:
        group = self._groups.pop(key)
        task = asyncio.get_running_loop().create_task(self._send(cfg, seed, group))
        self._sending.add(task)  # a reference, so the task is not collected mid-flight
        task.add_done_callback(self._sending.discard)

    async def _send(self, cfg: Any, seed: int, group: list[_Pending]) -> None:
        body = {
            "model": cfg.model,
            "prompt": [p.text for p in group],
            "temperature": 0,
            "seed": seed,
            "max_tokens": max(p.prompt.max_tokens for p in group),
            # vLLM >= 0.12 (the guided_json field was removed then).
            "structured_outputs": {"json": group[0].prompt.schema},
        }
        try:
            async with self.caller.slot(cfg) as endpoint:
                reply = await endpoint.post("completions", body, cfg.timeout_s)
        except AttemptFailed as exc:
            if exc.status in (404, 405):
                if cfg.url not in self._chat_only:
                    log.warning("%s has no /v1/completions (%s): its calls go one by one to the chat API",
                                cfg.url, exc.status)
                self._chat_only.add(cfg.url)
                exc = AttemptFailed(NO_COMPLETIONS, f"{cfg.url} has no /v1/completions", retryable=True)
            for p in group:
                _settle(p.future, exc)
            return
        except BaseException as exc:  # noqa: BLE001 - every waiting call must hear of it
            for p in group:
                _settle(p.future, exc)
            raise
        for p, outcome in zip(group, split_reply(reply, group)):
            _settle(p.future, outcome)

    async def aclose(self) -> None:
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)


def _settle(future: asyncio.Future, outcome: Any) -> None:
    if future.done():  # its caller gave up (cancelled)
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


class EmbedBatcher:
    """Embedding calls of one simulation round made at about the same time
    (the agent stage's reflections, one per agent) become one request.

    Calls are gathered for ``batch_window_ms`` (or until ``MAX_TEXTS``
    texts have come) and ``send(texts, sim_id, round)`` embeds them all in
    one call (one LlmCall record, with its retries and fallbacks); each
    caller gets its own rows back, or the call's error. Keyed by simulation
    and round, so a record's cost stays with its simulation."""

    MAX_TEXTS = 512

    def __init__(self, send: Callable[[list[str], str, int], Awaitable[list]], window_ms: float) -> None:
        self.send = send
        self.window_s = window_ms / 1000.0
        self._groups: dict[tuple[str, int], list[tuple[list[str], asyncio.Future]]] = {}
        self._sending: set[asyncio.Task] = set()

    async def embed(self, texts: list[str], sim_id: str, round: int) -> list:
        key = (sim_id, round)
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        group = self._groups.setdefault(key, [])
        group.append((texts, future))
        if sum(len(t) for t, _ in group) >= self.MAX_TEXTS:
            self._flush(key, group)
        elif len(group) == 1:
            loop.call_later(self.window_s, self._flush, key, group)
        return await future

    def _flush(self, key: tuple[str, int], group: list) -> None:
        if self._groups.get(key) is not group:  # sent already for being full
            return
        del self._groups[key]
        task = asyncio.get_running_loop().create_task(self._send(key, group))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, key: tuple[str, int], group: list) -> None:
        try:
            rows = await self.send([t for texts, _ in group for t in texts], *key)
        except BaseException as exc:  # noqa: BLE001 - every waiting call must hear of it
            for _, future in group:
                _settle(future, exc)
            if not isinstance(exc, Exception):
                raise
            return
        at = 0
        for texts, future in group:
            _settle(future, rows[at:at + len(texts)])
            at += len(texts)

    async def aclose(self) -> None:
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
