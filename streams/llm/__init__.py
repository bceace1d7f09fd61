"""LLM access for Murmur processors: vLLM over HTTP or a deterministic stand-in.

Use :func:`make_llm` and the prompt builders; both backends offer
``complete_json(role, prompt, *, cache_key=None, sim_id="", round=0)``,
``embed(texts, *, sim_id="", round=0)`` and ``aclose()``.
"""

from __future__ import annotations

from typing import Any

from .client import LlmClient
from .deterministic import DeterministicLlm
from .embedder import DeterministicEmbedder, MiniLmEmbedder, VllmEmbedder, cosine, make_embedder
from .prompts import (
    IMPORTANCE_FALLBACK,
    Prompt,
    importance_prompt,
    memory_prompt,
    reflection_prompt,
    stance_prompt,
)
from .records import RECORD_FIELDS, CallRecord, LlmResult, LlmUnavailable, OnCall


def make_llm(settings: Any, on_call: OnCall | None = None) -> LlmClient | DeterministicLlm:
    """The backend ``settings.llm.backend`` names; embeddings follow ``embed_backend``."""
    llm = getattr(settings, "llm", settings)
    if llm.backend == "vllm":
        return LlmClient(llm, on_call)
    return DeterministicLlm(llm, on_call, embedder=make_embedder(llm, on_call))


__all__ = [
    "CallRecord", "DeterministicEmbedder", "DeterministicLlm", "IMPORTANCE_FALLBACK", "LlmClient",
    "LlmResult", "LlmUnavailable", "MiniLmEmbedder", "OnCall", "Prompt", "RECORD_FIELDS",
    "VllmEmbedder", "cosine", "importance_prompt", "make_embedder",
    "make_llm", "memory_prompt", "reflection_prompt", "stance_prompt",
]
