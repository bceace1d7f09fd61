"""Memory retrieval: alpha*relevance + beta*recency + gamma*importance.

* relevance: max(0, cosine) of the query and memory embeddings;
* recency: 0.5 ** (age / half_life), age measured in *event time* from the
  reference instant (the request's ``at_ts``, else the agent's newest
  memory), never the wall clock, so a replayed simulation ranks the same;
* importance: (importance - 1) / 9.
Weights are normalised to sum 1 (as MiroFish does). Qdrant supplies the
candidates by relevance (a wider set than asked for), then this module
re-ranks them; each result carries its three components and the total.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Weights:
    relevance: float = 1.0
    recency: float = 1.0
    importance: float = 1.0

    def normalised(self) -> "Weights":
        total = self.relevance + self.recency + self.importance
        if total <= 0:
            raise ValueError("at least one weight must be positive")
        return Weights(self.relevance / total, self.recency / total, self.importance / total)


def candidates_for(top_k: int) -> int:
    return min(1000, max(50, top_k * 5))


def rank(candidates: list[tuple[float, dict]], *, agent_id: str, include_public: bool, reference_ts: int,
         weights: Weights, half_life_s: float, top_k: int) -> list[dict]:
    w = weights.normalised()
    out = []
    for cos, p in candidates:
        # Defence in depth: the store's filter already excludes these.
        if p["agent_id"] != agent_id and not (include_public and p["public"]):
            continue
        relevance = max(0.0, float(cos))
        age_s = max(0, reference_ts - p["ts"]) / 1000
        recency = 0.5 ** (age_s / half_life_s)
        importance = (p["importance"] - 1) / 9
        total = w.relevance * relevance + w.recency * recency + w.importance * importance
        out.append({
            "memory_id": p["memory_id"], "agent_id": p["agent_id"], "kind": p["kind"], "public": p["public"],
            "round": p["round"], "ts": p["ts"], "importance": p["importance"], "content": p["content"],
            "scores": {"relevance": round(relevance, 6), "recency": round(recency, 6),
                       "importance": round(importance, 6), "total": round(total, 6)},
        })
    out.sort(key=lambda r: (-r["scores"]["total"], -r["ts"], r["memory_id"]))
    return out[:top_k]
