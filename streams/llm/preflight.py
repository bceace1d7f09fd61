"""What a worker checks about its LLM servers before it takes any input:
every role's model is one its server serves (``GET /v1/models``, vLLM's
OpenAI-compatible list). A wrong model name would otherwise load, and every
call would fail and fall back, or dead-letter, for the whole run.

A server that does not answer is not a configuration error: it may be
starting, or away for a while, which the client's retries and fallbacks are
for. It is reported, and the worker starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from streams.settings import LlmSettings


@dataclass
class Preflight:
    errors: list[str] = field(default_factory=list)  # stop the worker
    warnings: list[str] = field(default_factory=list)  # say so, and start


def roles_in_use(llm: LlmSettings) -> list[str]:
    roles = ["fast", "balanced", "heavy"] if llm.backend == "vllm" else []
    return roles + (["embed"] if llm.embed_backend == "vllm" else [])


def check_models(llm: LlmSettings, *, timeout_s: float = 5.0) -> Preflight:
    out = Preflight()
    served: dict[str, list[str] | str] = {}  # url -> model ids, or why it did not answer
    for role in roles_in_use(llm):
        cfg = getattr(llm, role)
        setting = f"MURMUR_LLM__{role.upper()}"
        url = cfg.url.rstrip("/")
        if not url.startswith(("http://", "https://")):
            out.errors.append(f"{setting}__URL: {cfg.url!r} is not an http(s) URL")
            continue
        if url not in served:
            try:
                resp = httpx.get(f"{url}/models", timeout=timeout_s,
                                 headers={"Authorization": f"Bearer {cfg.api_key}"})
                resp.raise_for_status()
                served[url] = [m["id"] for m in resp.json().get("data", [])]
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                served[url] = f"{type(exc).__name__}: {exc}"
        models = served[url]
        if isinstance(models, str):
            out.warnings.append(f"{setting}__URL: {url}/models did not answer ({models}); "
                                f"the model {cfg.model!r} is not checked")
        elif cfg.model not in models:
            out.errors.append(f"{setting}__MODEL: {cfg.model!r} is not served at {url} "
                              f"(it serves: {', '.join(models) or 'nothing'})")
    return out
