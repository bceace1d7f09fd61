"""contradiction: does a new memory contradict one the agent already holds?

Each agent keeps a bounded window of its recent memories (id, event time,
text, embedding quantised to int8) in this processor's own state, not in
Qdrant: a sink may lag, and a replay must give the same answer. A new memory
is compared with its 3 nearest neighbours above a cosine threshold; the
memory's one LLM call (``processors/memory_call.py``, role ``fast``) judges
it against all of them at once and names those it contradicts, and why;
each is a Conflict event
(the read model then marks the older memory superseded, never deleted).

The window is small on purpose: Faust writes a key's whole value to the
changelog on every update, so 32 memories x 384 bytes is the cost per write.

Similarities to the window are one matrix product (numpy) per memory, and
quantising is vectorised too: done in pure Python they took about three
quarters of the whole pipeline's CPU (bench B2/B5 profile). ``MURMUR_CONTRADICTION_COSINE=python`` (settings.contradiction_cosine) keeps the old loop, so
the benchmark can run both side by side.
"""

from __future__ import annotations

import base64
import math
from functools import lru_cache

import numpy as np

from streams.ids import stable_id
from streams.runtime import Incoming, with_defaults
from streams.settings import Settings
from streams.vectors import vector_of

NEIGHBOURS = 3
TEXT_CHARS = 300


def quantise(vec: list[float], mode: str = "numpy") -> str:
    """int8 per dimension (the vectors are unit length), base64 for JSON state.
    ``mode`` is settings.contradiction_cosine (python: the old loop)."""
    if mode == "python":
        return base64.b64encode(bytes((max(-127, min(127, round(v * 127))) & 0xFF) for v in vec)).decode()
    # np.rint rounds half to even, as round() does: the same bytes. Clipped
    # by minimum/maximum, the same values as np.clip for finite numbers
    # without its per-call overhead (a tenth of quantising).
    codes = np.minimum(np.maximum(np.rint(np.asarray(vec, dtype=np.float64) * 127), -127), 127).astype(np.int8)
    return base64.b64encode(codes.tobytes()).decode()


def dequantise(text: str) -> list[float]:
    return [(b - 256 if b > 127 else b) / 127 for b in base64.b64decode(text)]


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def load_state(stored: dict | None) -> dict:
    return with_defaults(stored, empty_state())


def empty_state() -> dict:
    return {"window": []}


def already_seen(state: dict, memory: dict) -> bool:
    """At-least-once delivery re-sends memories (a rebalance, a restart, an
    upstream redelivery re-produces them at new offsets): one already in the
    window was applied, and comparing it again with newer memories would
    invent backward edges."""
    return memory["memory_id"] in [m["id"] for m in state["window"]]  # a list's `in`: no generator per memory


@lru_cache(maxsize=32768)
def _codes(text: str) -> bytes:
    """A remembered vector's int8 codes, decoded once: each memory meets
    every newer memory of its window (32), and decoding it again each time
    was half of the similarities' cost (B5 profile). 32,768 rows (a
    thousand agents' windows) are about 14 MB."""
    return base64.b64decode(text)


def similarities(window: list[dict], vec: list[float]) -> list[float]:
    """Cosine of ``vec`` with every remembered (int8) vector; 0 for a zero vector.
    The 1/127 scale of the int8 codes cancels out of a cosine."""
    if not window:
        return []
    codes = np.frombuffer(b"".join([_codes(m["v"]) for m in window]), dtype=np.int8)
    mat = codes.reshape(len(window), -1).astype(np.float64)
    q = np.asarray(vec, dtype=np.float64)
    norms = np.sqrt(np.einsum("ij,ij->i", mat, mat)) * math.sqrt(float(q @ q))
    dots = mat @ q
    # Divided as one array (the same IEEE quotients as one by one); 0 where
    # a norm is 0 (a zero vector: rare, so checked first).
    if norms.all():
        return (dots / norms).tolist()
    return np.divide(dots, norms, out=np.zeros(len(dots)), where=norms != 0).tolist()


def neighbours(state: dict, vec: list[float], *, threshold: float, k: int = NEIGHBOURS,
               mode: str = "numpy") -> list[tuple[float, dict]]:
    """The k most similar remembered memories at or above the threshold,
    most similar first (ties: the newer one)."""
    if mode == "python":
        scored = [(cosine(vec, dequantise(m["v"])), m) for m in state["window"]]
    else:
        scored = list(zip(similarities(state["window"], vec), state["window"]))
    scored = [(s, m) for s, m in scored if s >= threshold]
    scored.sort(key=lambda sm: (-sm[0], -sm[1]["ts"], sm[1]["id"]))
    return scored[:k]


def remember(state: dict, memory: dict, window: int, mode: str = "numpy") -> None:
    state["window"].append({"id": memory["memory_id"], "ts": memory["ts"], "t": memory["content"][:TEXT_CHARS],
                            "v": quantise(vector_of(memory), mode)})
    del state["window"][:-window]


def conflict(memory: dict, old: dict, similarity: float, reason: str, backend: str, inc: Incoming) -> dict:
    return {
        "event_id": stable_id("conflict", memory["memory_id"], old["id"]),
        "sim_id": memory["sim_id"], "round": memory["round"], "ts": memory["ts"], "agent_id": memory["agent_id"],
        "new_memory_id": memory["memory_id"], "old_memory_id": old["id"], "old_ts": old["ts"],
        "new_content": memory["content"][:TEXT_CHARS], "old_content": old["t"], "similarity": round(similarity, 6),
        "reason": reason, "confidence": 1.0, "backend": backend,
        "source_topic": inc.topic, "source_partition": inc.partition, "source_offset": inc.offset,
    }


class Window:
    """An agent's recent memories, and which of them a new one is compared with."""

    def __init__(self, settings: Settings) -> None:
        self.threshold = settings.contradiction_similarity
        self.size = settings.contradiction_window
        self.mode = settings.contradiction_cosine

    def candidates(self, state: dict, memory: dict) -> list[tuple[float, dict]]:
        """The new memory's nearest earlier memories (to be judged by the
        LLM), the memory then remembered. Whether it contradicts them never
        changes the window, so the next memory's candidates do not wait for
        the verdict. A memory seen before, or without a vector, is not compared."""
        vec = vector_of(memory)
        if not len(vec) or already_seen(state, memory):
            return []
        near = neighbours(state, vec, threshold=self.threshold, mode=self.mode)
        remember(state, memory, self.size, self.mode)
        return near


def conflicts_of(memory: dict, near: list[tuple[float, dict]], contradicts: dict[int, str], backend: str,
                 inc: Incoming) -> list[dict]:
    """Conflict events for the candidates the LLM said the memory contradicts
    (``contradicts``: 1-based position in ``near`` -> reason)."""
    return [conflict(memory, old, sim, contradicts[i], backend, inc)
            for i, (sim, old) in enumerate(near, 1) if i in contradicts]
