"""Offline backend: the same interface as LlmClient, answers from features.

Seeded by nothing but its inputs, so a replay gives identical answers and
identical LlmCall event ids. The answers are meant to be meaningful (long
opinionated posts matter more than likes; reflections summarise and cite
their memories; contradictions are opposite valence on a shared subject) so
offline runs of the whole pipeline exercise realistic data.
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from typing import Any, Sequence

from . import lexicon as lx
from .embedder import DeterministicEmbedder, Embedder
from .prompts import Prompt
from .records import LlmResult, LlmUnavailable, OnCall, emit, estimate_tokens, make_record

MODEL = "murmur-deterministic-v1"
ROLES = ("fast", "balanced", "heavy")

# Event kinds that are observations rather than authored content: their
# importance is capped whatever text they carry.
_OBSERVATION_CAP = {"like": 2, "unlike": 1, "follow": 2, "unfollow": 2, "view": 1,
                    "react": 2, "reaction": 2, "mute": 2, "block": 3}
_SHARE_KINDS = {"repost", "share", "retweet", "boost"}
_CAPITALISED = re.compile(r"(?<![\w'])([A-Z][a-zA-Z]+|@\w+)")
_NUMBER = re.compile(r"\d")


def _named_entities(text: str) -> int:
    """Capitalised words not at a sentence start (and not 'I'), plus @mentions."""
    count = 0
    for m in _CAPITALISED.finditer(text):
        word = m.group(1)
        if word.startswith("@"):
            count += 1
            continue
        before = text[: m.start()].rstrip()
        if word != "I" and before and before[-1] not in ".!?:\"'(":
            count += 1
    return count


@lru_cache(maxsize=16384)
def importance(content: str, kind: str = "post") -> int:
    # Cached: a pure function of its inputs, and a simulation's texts repeat.
    toks = lx.tokens(content)
    n = len(toks)
    score = 2.0
    score += (n >= 8) + (n >= 25) + (n >= 60)  # longer posts carry more
    score += 1.0 if "!" in content else 0.0
    score += 0.5 if "?" in content else 0.0
    score += min(lx.strong_word_count(content), 2)  # emotional charge
    score += 1.0 if any(t in lx.OPINION_MARKERS for t in toks) else 0.0
    score += min(_named_entities(content), 3) * 0.5
    score += min(len(_NUMBER.findall(content)), 2) * 0.5 if n else 0.0
    kind = kind.lower().strip()
    if kind in _SHARE_KINDS:
        score -= 2.0  # passing on someone else's words
    value = int(math.floor(score + 0.5))
    if kind in _OBSERVATION_CAP:
        value = min(value, _OBSERVATION_CAP[kind])
    return max(1, min(10, value))


def _topics(memories: Sequence[dict[str, str]]) -> list[tuple[str, list[int]]]:
    """Stems shared by >=2 memories, most shared first, each with its members."""
    members: dict[str, list[int]] = {}
    surface: dict[str, dict[str, int]] = {}  # stem -> its words' counts
    for i, mem in enumerate(memories):
        seen = set()
        for word in lx.content_words(mem["text"]):
            s = lx.stem(word)
            # Not setdefault(s, Counter()): that built a Counter per word
            # (a twentieth of a replay's reflections).
            counts = surface.get(s)
            if counts is None:
                counts = surface[s] = {}
            counts[word] = counts.get(word, 0) + 1
            if s not in seen:
                seen.add(s)
                members.setdefault(s, []).append(i)
    ranked = sorted((s for s in members if len(members[s]) >= 2), key=lambda s: (-len(members[s]), s))
    out, used_sets = [], []
    for s in ranked:
        group = members[s]
        if group in used_sets:  # same memories as a stronger topic: redundant
            continue
        used_sets.append(group)
        word = sorted(surface[s].items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        out.append((word, group))
    return out


def _topic_belief(topic: str, vals: list[float], n: int) -> str:
    mean = sum(vals) / len(vals)
    if any(v > 0.15 for v in vals) and any(v < -0.15 for v in vals) and abs(mean) < 0.3:
        view = f"people around me are divided about {topic}"
    elif mean > 0.15:
        view = f"{topic} is a good thing"
    elif mean < -0.15:
        view = f"{topic} is a real problem"
    else:
        view = f"{topic} matters to the people around me"
    return f"I keep seeing {topic} come up ({n} memories); I believe {view}."


def reflection(agent: str, memories: Sequence[dict[str, str]]) -> dict[str, Any]:
    if not memories:
        raise ValueError("reflection needs at least one memory")
    vals = [lx.valence(m["text"]) for m in memories]
    beliefs: list[dict[str, Any]] = []
    for topic, group in _topics(memories)[:4]:
        beliefs.append({
            "text": _topic_belief(topic, [vals[i] for i in group], len(group)),
            "sources": [memories[i]["id"] for i in group],
        })
    # Overall mood, citing the most emotionally charged memories.
    mean = sum(vals) / len(vals)
    mood = lx.label(mean)
    view = {"positive": "things around me are going well",
            "negative": "things around me are getting worse",
            "neutral": "opinions around me are mixed"}[mood]
    charged = sorted(range(len(memories)), key=lambda i: (-abs(vals[i]), i))[:3]
    beliefs.append({"text": f"Most of what I remember lately feels {mood}; I believe {view}.",
                    "sources": [memories[i]["id"] for i in sorted(charged)]})
    # Fill up to three with single memories not yet cited, then any memory.
    cited = {s for b in beliefs for s in b["sources"]}
    order = [i for i in range(len(memories)) if memories[i]["id"] not in cited] + list(range(len(memories)))
    for i in order:
        if len(beliefs) >= 3:
            break
        snippet = " ".join(memories[i]["text"].split()[:14]).rstrip(".!?,;")
        text = f'I remember "{snippet}"; I believe it is worth keeping in mind.'
        if all(b["text"] != text for b in beliefs):
            beliefs.append({"text": text, "sources": [memories[i]["id"]]})
    # Too few memories for three beliefs: look ahead from the main one.
    words = lx.content_words(memories[0]["text"]) or ["this"]
    subject = words[0]
    for text in (f"I believe {subject} will come up again.",
                 f"I believe I should watch what happens with {subject} next."):
        if len(beliefs) < 3:
            beliefs.append({"text": text, "sources": [memories[0]["id"]]})
    return {"beliefs": beliefs[:5]}


@lru_cache(maxsize=65536)
def _reading(text: str) -> tuple[float, str, frozenset[str]]:
    # A memory meets every newer neighbour of its agent's window: reading
    # each text once, not once per pair, was an eighth of a replay's time.
    v = lx.valence(text)
    return v, lx.label(v), frozenset(lx.stem(w) for w in lx.content_words(text))


def contradiction(a: str, b: str) -> dict[str, Any]:
    va, la, wa = _reading(a)
    vb, lb, wb = _reading(b)
    shared = sorted(wa & wb)
    overlap = len(shared) / max(1, min(len(wa), len(wb)))
    similar = bool(shared) and overlap >= 0.3
    opposite = {la, lb} == {"positive", "negative"}
    subject = ", ".join(shared[:3]) if shared else "no shared subject"
    reason = f"A is {la} ({va:+.2f}) and B is {lb} ({vb:+.2f}); subject: {subject}."
    return {"contradicts": similar and opposite, "reason": reason}


def _contradicts(a: str, b: str) -> bool:
    """:func:`contradiction`'s verdict alone: most pairs are not opposite,
    and their reason (sorting the shared words, formatting) was never read."""
    _, la, wa = _reading(a)
    _, lb, wb = _reading(b)
    if {la, lb} != {"positive", "negative"}:
        return False
    shared = wa & wb
    return bool(shared) and len(shared) / max(1, min(len(wa), len(wb))) >= 0.3


def memory(question: str, statements: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Each statement's importance and valence, and the earlier statements (A)
    it (B) contradicts, pair by pair as :func:`contradiction` judges them."""
    out = []
    for i, st in enumerate(statements, 1):
        b = st["content"]
        out.append({"statement": i, "importance": importance(b, st.get("kind", "post")), **stance(question, b),
                    "contradicts": [{"earlier": j, "reason": contradiction(a, b)["reason"]}
                                    for j, a in enumerate(st.get("earlier", []), 1) if _contradicts(a, b)]})
    return {"statements": out}


def stance(question: str, post: str) -> dict[str, Any]:
    return {"valence": round(lx.valence(post), 3)}


def answer(task: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """The deterministic answer of a task; the dev server uses it too."""
    if task == "importance":
        return {"importance": importance(inputs.get("content", ""), inputs.get("kind", "post"))}
    if task == "reflection":
        return reflection(inputs.get("agent", ""), inputs.get("memories", []))
    if task == "memory":
        if not inputs.get("statements"):
            raise ValueError("no statement to read")
        return memory(inputs.get("question", ""), inputs["statements"])
    if task == "stance":
        return stance(inputs.get("question", ""), inputs.get("post", ""))
    raise KeyError(task)


class DeterministicLlm:
    """Drop-in for :class:`LlmClient` when ``settings.llm.backend == "deterministic"``."""

    backend = "deterministic"
    waits = False  # answers in-process: callers need not overlap its calls (streams/llm/fanout.py)

    def __init__(self, settings: Any, on_call: OnCall | None = None, *, embedder: Embedder | None = None):
        llm = getattr(settings, "llm", settings)
        self._on_call = on_call
        self._embedder = embedder or DeterministicEmbedder(llm.embed_dim, on_call=on_call)

    async def complete_json(self, role: str, prompt: Prompt, *, cache_key: str | None = None,
                            sim_id: str = "", round: int = 0) -> LlmResult:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        key = cache_key or prompt.default_cache_key()
        error, data = None, None
        try:
            # Not validated here: these answers match their schemas by
            # construction, which tests/unit/streams/llm/test_llm_deterministic.py checks
            # over generated inputs (validating every call cost a fifth of a
            # replay's time). A model's answers are validated (client.py).
            data = answer(prompt.task, prompt.inputs)
        except (KeyError, ValueError) as exc:
            error = f"no deterministic answer for task {prompt.task!r}: {exc}"
        completion = json.dumps(data) if data is not None else ""
        record = make_record(
            backend=self.backend, role=role, model=MODEL, status="ok" if data is not None else "failed",
            attempts=1, cache_key=key, prompt_tokens=estimate_tokens(prompt.system, prompt.user),
            completion_tokens=estimate_tokens(completion), latency_ms=0.0, sim_id=sim_id, round=round,
            error=error, task=prompt.task,
        )
        await emit(record, self._on_call)
        if data is None:
            raise LlmUnavailable(error or "failed", record)
        return LlmResult(data=data, backend=self.backend, role=role, model=MODEL, status="ok", attempts=1,
                         prompt_tokens=record["prompt_tokens"], completion_tokens=record["completion_tokens"],
                         latency_ms=0.0, cache_key=key, event_id=record["event_id"], record=record)

    async def embed(self, texts: list[str], *, sim_id: str = "", round: int = 0) -> list[list[float]]:
        return await self._embedder.embed(texts, sim_id=sim_id, round=round)

    async def aclose(self) -> None:
        await self._embedder.aclose()
