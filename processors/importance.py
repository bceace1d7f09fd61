"""importance: every Post and Observation becomes a ScoredMemory (1..10).

The rule below (``rule-v1``) is the content-based scorer; it is what the
agent uses until an LLM scorer is configured, and stays the documented
reference for what "important" means here:

* base by action: an original post 4, a quote 4, a comment 3, a repost 2;
  an interview 5, follow/mute 3, like/dislike/search 2, refresh/trend 1,
  anything else 2;
* +1 if longer than 140 characters, +1 more if longer than 400;
* +1 for one strongly charged word (crisis, scandal, love, hate, ...),
  +2 for three or more;
* +1 for an exclamation mark; +1 for a number (a claim about facts);
* +1 for a first-person commitment (I will, I believe, I refuse, never ...);
* clipped to 1..10.
"""

from __future__ import annotations

import re
import time

import faust

from processors.runtime import Incoming, Runtime
from streams.ids import stable_id
from streams.metrics import BATCH_SECONDS
from streams.topics import OBSERVATIONS, POSTS, SCORED, agent_key

RULE_SCORER = "rule-v1"
STAGE = "importance"

BASE = {
    "CREATE_POST": 4, "QUOTE_POST": 4, "CREATE_COMMENT": 3, "REPOST": 2,
    "INTERVIEW": 5, "FOLLOW": 3, "MUTE": 3,
    "LIKE_POST": 2, "DISLIKE_POST": 2, "LIKE_COMMENT": 2, "DISLIKE_COMMENT": 2,
    "SEARCH_POSTS": 2, "SEARCH_USER": 2, "REFRESH": 1, "TREND": 1,
}
CHARGED = re.compile(
    r"\b(crisis|scandal|disaster|outrage|corrupt\w*|fraud|love|hate|furious|betray\w*|terrible|amazing|"
    r"historic|devastat\w*|shock\w*|urgent|danger\w*|victory|collapse|resign\w*|protest\w*|ban|war)\b",
    re.IGNORECASE,
)
COMMITMENT = re.compile(r"\b(i will|i'll|i believe|i refuse|i support|i oppose|i promise|never|always|must)\b", re.IGNORECASE)
NUMBER = re.compile(r"\d")


def rate_importance(action: str, content: str) -> int:
    score = BASE.get(action, 2)
    if len(content) > 140:
        score += 1
    if len(content) > 400:
        score += 1
    charged = len(CHARGED.findall(content))
    score += 2 if charged >= 3 else 1 if charged else 0
    if "!" in content:
        score += 1
    if NUMBER.search(content):
        score += 1
    if COMMITMENT.search(content):
        score += 1
    return max(1, min(10, score))


def to_memory(inc: Incoming, *, importance: int, scorer: str, fallback: bool = False,
              embedding: list[float] | None = None, embedder: str = "") -> dict:
    """The ScoredMemory for one input; its id depends only on the input and
    the scorer, so re-scoring the same event rewrites the same row."""
    r = inc.record
    return {
        "event_id": stable_id("scored", r["event_id"], scorer),
        "memory_id": r["event_id"],
        "sim_id": r["sim_id"],
        "round": r["round"],
        "ts": r["ts"],
        "agent_id": r["agent_id"],
        "kind": "post" if inc.type_name == "Post" else "observation",
        "public": inc.type_name == "Post",
        "action": r["action"],
        "platform": r.get("platform", ""),
        "content": r["content"],
        "importance": importance,
        "importance_fallback": fallback,
        "scorer": scorer,
        "embedding": embedding or [],
        "embedder": embedder,
        "source_topic": inc.topic,
        "source_partition": inc.partition,
        "source_offset": inc.offset,
    }


def score_batch(batch: list[Incoming]) -> list[dict]:
    return [
        to_memory(inc, importance=rate_importance(inc.record["action"], inc.record["content"]), scorer=RULE_SCORER)
        for inc in batch
    ]


def register(app: faust.App, rt: Runtime, *, batch_size: int = 1000, within: float = 0.25) -> None:
    source = app.topic(rt.topic(POSTS), rt.topic(OBSERVATIONS))

    @app.agent(source, name=STAGE)
    async def importance(stream):
        async for events in stream.take_events(batch_size, within=within):
            started = time.perf_counter()
            batch = rt.decode_events(events, expected=("Post", "Observation"), stage=STAGE)
            for memory in score_batch(batch):
                rt.emit(STAGE, SCORED, agent_key(memory["sim_id"], memory["agent_id"]), memory)
            await rt.flush()
            BATCH_SECONDS.labels(STAGE).observe(time.perf_counter() - started)
