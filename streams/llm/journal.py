"""The LLM answer journal: a run's model answers, read back instead of asked again.

Every call the vLLM backend makes ends in an LlmCall event; a successful
one carries the request's ``fingerprint`` (the role's model, the output
schema, the system and user messages: what makes two requests the same)
and the validated ``answer``. Embeddings are not repeated there: each
memory's vector is already on its ScoredMemory event. A replay reads both
back (:func:`load`) and answers from them (:class:`JournalLlm`): an
LLM-driven run replays with no model call, to the byte, and a request the
journal does not hold is a miss, counted and reported, and sent to the
model only when asked (``fill``).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from .metrics import JOURNAL_ANSWERS
from .prompts import Prompt
from .records import LlmResult, LlmUnavailable
from .schema import per_schema


# A prompt's schema is hashed once, not on every call (a tenth of a worker's CPU otherwise).
_schema_digest = per_schema(lambda schema: hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).hexdigest())


def fingerprint(model: str, prompt: Prompt) -> str:
    """What identifies a request: the same fingerprint, the same question to the same model."""
    h = hashlib.sha256()
    for part in (model, prompt.schema_name, _schema_digest(prompt.schema), prompt.system, prompt.user):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def answer_text(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


@dataclass
class Journal:
    # fingerprint -> simulation -> (data, model): a simulation's answers are its own (see ResumedLlm)
    answers: dict[str, dict[str, tuple[dict[str, Any], str]]] = field(default_factory=dict)
    vectors: dict[str, list[float]] = field(default_factory=dict)  # text -> embedding
    hits: Counter = field(default_factory=Counter)  # by task
    misses: Counter = field(default_factory=Counter)

    def add_call(self, record: dict[str, Any]) -> None:
        """An LlmCall record; those without an answer (failed calls,
        embeddings, the deterministic backend's) hold nothing to replay."""
        if record.get("fingerprint") and record.get("answer"):
            self.answers.setdefault(record["fingerprint"], {})[record.get("sim_id") or ""] = (
                json.loads(record["answer"]), record["model"])

    def answer(self, fingerprint: str, sim_id: str | None = None) -> tuple[dict[str, Any], str] | None:
        """The recorded answer to a request: the simulation's own (``sim_id``),
        or any (None: a replay's journal holds one simulation's only)."""
        found = self.answers.get(fingerprint)
        if not found:
            return None
        return next(iter(found.values())) if sim_id is None else found.get(sim_id)

    def add_vector(self, text: str, vector: list[float]) -> None:
        if len(vector):
            self.vectors[text] = vector

    def summary(self) -> dict[str, Any]:
        return {"answers": sum(map(len, self.answers.values())), "vectors": len(self.vectors), "hits": sum(self.hits.values()),
                "misses": sum(self.misses.values()), "misses_by_task": dict(self.misses)}


def load(calls: Iterable[dict[str, Any]], memories: Iterable[dict[str, Any]],
         vector_of: Callable[[dict], list[float]]) -> Journal:
    journal = Journal()
    for record in calls:
        journal.add_call(record)
    for memory in memories:
        journal.add_vector(memory["content"], vector_of(memory))
    return journal


class JournalLlm:
    """The LLM backend of a replay: answers from a journal.

    ``model_llm`` (optional) is asked on a miss; without it a miss fails as
    an unavailable model would (its documented fallbacks apply) and is
    counted. A hit makes no call and emits no LlmCall record.
    """

    backend = "vllm"
    waits = False  # answers in-process

    def __init__(self, journal: Journal, settings: Any, *, model_llm: Any = None):
        self.journal = journal
        self.llm = getattr(settings, "llm", settings)
        self.model_llm = model_llm

    async def complete_json(self, role: str, prompt: Prompt, *, cache_key: str | None = None,
                            sim_id: str = "", round: int = 0) -> LlmResult:
        hit = self.journal.answer(fingerprint(getattr(self.llm, role).model, prompt))
        if hit is not None:
            self.journal.hits[prompt.task] += 1
            data, model = hit
            return LlmResult(data=data, backend="vllm", role=role, model=model, status="journal", attempts=0,
                             prompt_tokens=0, completion_tokens=0, latency_ms=0.0,
                             cache_key=cache_key or prompt.default_cache_key(), event_id="")
        self.journal.misses[prompt.task] += 1
        if self.model_llm is not None:
            return await self.model_llm.complete_json(role, prompt, cache_key=cache_key, sim_id=sim_id, round=round)
        raise LlmUnavailable(f"journal miss: no answer recorded for this {prompt.task} request")

    async def embed(self, texts: list[str], *, sim_id: str = "", round: int = 0) -> list[list[float]]:
        missing = [t for t in texts if t not in self.journal.vectors]
        self.journal.hits["embed"] += len(texts) - len(missing)
        if missing:
            self.journal.misses["embed"] += len(missing)
            if self.model_llm is None:
                raise LlmUnavailable(f"journal miss: no embedding recorded for {len(missing)} of {len(texts)} texts")
            found = dict(zip(missing, await self.model_llm.embed(missing, sim_id=sim_id, round=round)))
            return [self.journal.vectors.get(t) or found[t] for t in texts]
        return [self.journal.vectors[t] for t in texts]

    async def aclose(self) -> None:
        if self.model_llm is not None:
            await self.model_llm.aclose()


class ResumedLlm:
    """A live client that answers the requests its worker's group already
    paid for from their journal (``streams/resume_journal.py`` loads it when
    a worker starts), and sends every other one to the model as usual.

    Inputs processed again after a crash or a lost commit ask the same
    questions of the same state: they get the recorded answers, with no
    call and no LlmCall record (``murmur_llm_journal_answers_total`` counts
    them). A request whose prompt changed (the state moved on) is a new one.
    So is the same request in another simulation (template text, a repost
    in a second run): answered from the first one's journal it would leave
    no LlmCall record in its own simulation, whose replay would then miss it.
    Anything else the pipeline reads from a client comes from ``client``."""

    def __init__(self, journal: Journal, settings: Any, client: Any):
        self.journal = journal
        self.llm = getattr(settings, "llm", settings)
        self.client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    async def complete_json(self, role: str, prompt: Prompt, *, cache_key: str | None = None,
                            sim_id: str = "", round: int = 0) -> LlmResult:
        hit = self.journal.answer(fingerprint(getattr(self.llm, role).model, prompt), sim_id)
        if hit is None:
            return await self.client.complete_json(role, prompt, cache_key=cache_key, sim_id=sim_id, round=round)
        self.journal.hits[prompt.task] += 1
        JOURNAL_ANSWERS.labels(task=prompt.task).inc()
        data, model = hit
        return LlmResult(data=data, backend="vllm", role=role, model=model, status="journal", attempts=0,
                         prompt_tokens=0, completion_tokens=0, latency_ms=0.0,
                         cache_key=cache_key or prompt.default_cache_key(), event_id="")

    async def embed(self, texts: list[str], *, sim_id: str = "", round: int = 0) -> list:
        vectors = self.journal.vectors
        missing = [t for t in texts if t not in vectors]
        if len(missing) < len(texts):
            JOURNAL_ANSWERS.labels(task="embed").inc(len(texts) - len(missing))
        if not missing:
            return [vectors[t] for t in texts]
        found = dict(zip(missing, await self.client.embed(missing, sim_id=sim_id, round=round)))
        return [vectors[t] if t in vectors else found[t] for t in texts]

    async def aclose(self) -> None:
        await self.client.aclose()
