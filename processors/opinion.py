"""The verdict's decision functions: an agent's stance with inertia, the
weight of a contribution, and the Verdict record. Pure: the live processors
(``processors/stance.py`` per author, ``processors/verdict.py`` per
simulation) and replays (``processors/batch.py``, which runs those two
modules' own functions) call the same code, so there is one verdict.

How a post reaches the verdict (each feature can be switched off for
ablation):
  * its valence toward the question comes from a stance model
    (``processors/stance_model.py``), with a reading status: a post the
    model cannot read is counted as not covered, never as neutral;
  * credibility: a post weighs its author's credibility (persona);
  * importance: and (0.5 + importance/10), so poignant posts weigh more;
  * conviction: an agent holds its stance until ceil(10*conviction) opposing
    posts with |valence| >= 0.2; a post against its author's held stance
    counts at half weight (off: every opposing post flips at once);
  * contradiction: a post superseded by a later contradicting post of the
    same author no longer counts (the verdict counts current beliefs);
  * reflection: an agent's reflections count as its considered view, at half
    its credibility, when a model that read the posts wrote them.

The Verdict says what it rests on: posts counted (read with a stance signal,
read without one), posts the model could not read, coverage, reflections,
the stance model. Its direction is "insufficient" (confidence 0) when too
few posts were readable or carried a signal; otherwise confidence is
MiroFish's min(1, |ratio| * (1 - exp(-n/20))) with n the posts with a
signal, times coverage, times the stance model's measured reliability (its
macro-F1 on human-labelled stance / 100).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from processors.stance_model import STANCE_MIN
from streams.ids import stable_id

POSITIVE_THRESHOLD = 0.15
INSUFFICIENT = "insufficient"
ALL_FEATURES = ("importance", "reflection", "contradiction", "credibility", "conviction")


def direction_of(ratio: float) -> str:
    return "positive" if ratio > POSITIVE_THRESHOLD else "negative" if ratio < -POSITIVE_THRESHOLD else "neutral"


def sign(x: float, dead: float = STANCE_MIN) -> int:
    return 1 if x >= dead else -1 if x <= -dead else 0


@dataclass
class Persona:
    credibility: float = 0.4
    conviction: float = 0.5
    initial_stance: float = 0.0


@dataclass
class AgentStance:
    """Stance with inertia: a flip needs ceil(10*conviction) opposing posts."""

    stance: int = 0
    opposing: int = 0
    flips: int = 0

    def apply(self, v: float, conviction: float, *, inertia: bool) -> bool:
        """Apply one post's valence; return True when the post goes against
        the stance the agent still holds after it."""
        s = sign(v)
        if s == 0:
            return False
        if self.stance == 0:
            self.stance = s
            return False
        if s == self.stance:
            self.opposing = 0
            return False
        self.opposing += 1
        needed = max(1, math.ceil(10 * conviction)) if inertia else 1
        if self.opposing >= needed:
            self.stance, self.opposing = s, 0
            self.flips += 1
            return False
        return True


def post_weight(persona: Persona, importance: int, *, against: bool, features: frozenset[str]) -> float:
    w = persona.credibility if "credibility" in features else 1.0
    if "importance" in features:
        w *= 0.5 + importance / 10
    return w * (0.5 if against else 1.0)


def reflection_weight(persona: Persona, features: frozenset[str]) -> float:
    if "reflection" not in features:
        return 0.0
    return 0.5 * (persona.credibility if "credibility" in features else 1.0)


@dataclass(frozen=True)
class Evidence:
    """What a verdict rests on, as of its round."""

    weighted_sum: float = 0.0
    weight_sum: float = 0.0
    posts: int = 0  # posts in the support ratio (read, with or without a stance signal)
    reflections: int = 0  # reflections in the support ratio
    read: int = 0  # posts with a stance signal
    no_signal: int = 0  # posts read without one
    unreadable: int = 0  # posts the stance model could not read (left out)
    excluded_reflections: int = 0  # template reflections (never counted)

    @property
    def coverage(self) -> float:
        seen = self.posts + self.unreadable
        return self.posts / seen if seen else 0.0


def verdict_record(*, sim_id: str, question: str, round_: int, ts: int, evidence: Evidence, authors: int,
                   stances: list[int], flips: int, backend: str, reliability: float = 1.0,
                   min_coverage: float = 0.5, min_signal_posts: int = 5) -> dict:
    """The Verdict event: MiroFish's numbers, with what they rest on."""
    e = evidence
    ratio = e.weighted_sum / e.weight_sum if e.weight_sum else 0.0
    enough = e.coverage >= min_coverage and e.read >= min_signal_posts
    # MiroFish's confidence, scaled by the share of posts read and by how
    # well the stance model reads stance: a verdict is never more sure than
    # its reader.
    confidence = min(1.0, abs(ratio) * (1 - math.exp(-e.read / 20))) * e.coverage * reliability if enough else 0.0
    return {
        "event_id": stable_id("verdict", sim_id, round_),
        "sim_id": sim_id, "round": round_, "ts": ts, "question": question,
        "support_ratio": round(ratio, 6), "direction": direction_of(ratio) if enough else INSUFFICIENT,
        "magnitude": round(abs(ratio), 6), "confidence": round(confidence, 6),
        "post_count": e.posts, "author_count": authors,
        "stance_positive": sum(1 for s in stances if s > 0),
        "stance_negative": sum(1 for s in stances if s < 0),
        "stance_neutral": sum(1 for s in stances if s == 0),
        "flips": flips, "rationale": None, "backend": backend,
        "reflection_count": e.reflections, "posts_read": e.read, "posts_no_signal": e.no_signal,
        "posts_unreadable": e.unreadable, "coverage": round(e.coverage, 6),
        "reflections_excluded": e.excluded_reflections, "stance_reliability": round(reliability, 6),
    }
