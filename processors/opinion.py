"""The verdict's decision functions: a post's stance toward the question, an
agent's stance with inertia, and the per-round aggregate. Pure: the live
processors and the eval replay call the same code.

Valence of a post toward the simulation's question, offline (``lexicon-v1``):
  1. VADER's compound score of the post (a lexicon model with negation,
     intensifiers, punctuation and emoji rules);
  2. question-aware rules: explicit stance verbs about the subject count
     (+0.5 for support/favour/approve/welcome/back/for it, -0.5 for
     oppose/against/reject/stop/ban/scrap/repeal/backlash/opposition/critics),
     because sentiment words
     alone miss "I oppose the tax" (no charged word) and
     "I'm glad they stopped it" (positive words, negative stance);
  3. a post that shares no content word with the question or its subject
     counts at half strength (off-topic mood, not stance);
  4. clipped to [-1, 1].
With the LLM backend the ``fast`` model answers the same question through
structured output; both say which produced the number.

How the features reach the verdict (each can be switched off for ablation):
  * credibility: a post weighs its author's credibility (persona);
  * importance: and (0.5 + importance/10), so poignant posts weigh more;
  * conviction: an agent holds its stance until ceil(10*conviction) opposing
    posts with |valence| >= 0.2; a post against its author's held stance
    counts at half weight (off: every opposing post flips at once);
  * contradiction: a post superseded by a later contradicting post of the
    same author no longer counts (the verdict counts current beliefs);
  * reflection: an agent's reflections count as its considered view, at half
    its credibility.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache

from streams.ids import stable_id

POSITIVE_THRESHOLD = 0.15
STANCE_MIN = 0.2
LEXICON = "lexicon-v1"
ALL_FEATURES = ("importance", "reflection", "contradiction", "credibility", "conviction")

_PRO = re.compile(r"\b(support(s|ed|ing)?|favou?r(s|ed)?|approve[sd]?|welcome[sd]?|back(ing)?|in favou?r|for it|"
                  r"yes on|vote yes|endorse[sd]?|glad|convinced me)\b", re.I)
_CON = re.compile(r"\b(oppose[sd]?|opposing|against|reject(s|ed)?|stop(ped)?|ban(ned)?|scrap(ped)?|repeal(ed)?|"
                  r"vote no|no on|boycott|mistake|disaster|backlash|opposition|critics?)\b", re.I)
_WORD = re.compile(r"[a-z]{4,}")
_STOP = frozenset("will would could should about over what which with from that this they them their there have "
                  "been were into than then when where whether public opinion trend positive negative overall "
                  "simulated period consider general sentiment".split())


@lru_cache(maxsize=1)
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def subject_words(question: str) -> frozenset[str]:
    return frozenset(w for w in _WORD.findall(question.lower()) if w not in _STOP)


def valence(text: str, question: str = "") -> float:
    score = _vader().polarity_scores(text)["compound"]
    if _PRO.search(text):
        score += 0.5
    if _CON.search(text):
        score -= 0.5
    subject = subject_words(question)
    if subject and not (subject & set(_WORD.findall(text.lower()))):
        score *= 0.5
    return max(-1.0, min(1.0, round(score, 6)))


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


def verdict_record(*, sim_id: str, question: str, round_: int, ts: int, weighted_sum: float, weight_sum: float,
                   n: int, authors: int, stances: list[int], flips: int, backend: str) -> dict:
    """The Verdict event: MiroFish's numbers, computed in one place."""
    ratio = weighted_sum / weight_sum if weight_sum else 0.0
    return {
        "event_id": stable_id("verdict", sim_id, round_),
        "sim_id": sim_id, "round": round_, "ts": ts, "question": question,
        "support_ratio": round(ratio, 6), "direction": direction_of(ratio), "magnitude": round(abs(ratio), 6),
        "confidence": round(min(1.0, abs(ratio) * (1 - math.exp(-n / 20))), 6),
        "post_count": n, "author_count": authors,
        "stance_positive": sum(1 for s in stances if s > 0),
        "stance_negative": sum(1 for s in stances if s < 0),
        "stance_neutral": sum(1 for s in stances if s == 0),
        "flips": flips, "rationale": None, "backend": backend,
    }


@dataclass
class Contribution:
    memory_id: str
    agent_id: str
    round: int
    valence: float
    weight: float


@dataclass
class VerdictBook:
    """Everything the verdict of a simulation needs, fed in event order."""

    sim_id: str
    question: str
    features: frozenset[str] = frozenset(ALL_FEATURES)
    backend: str = LEXICON
    personas: dict[str, Persona] = field(default_factory=dict)
    stances: dict[str, AgentStance] = field(default_factory=dict)
    contributions: dict[str, Contribution] = field(default_factory=dict)
    superseded: set[str] = field(default_factory=set)
    flips_by_round: dict[int, int] = field(default_factory=dict)
    stance_at_round: dict[int, dict[str, int]] = field(default_factory=dict)

    def persona(self, agent_id: str) -> Persona:
        return self.personas.get(agent_id, Persona())

    def add_persona(self, agent_id: str, p: Persona) -> None:
        self.personas[agent_id] = p
        st = self.stances.setdefault(agent_id, AgentStance())
        if st.stance == 0:
            st.stance = sign(p.initial_stance, 0.15)


    def add_post(self, memory_id: str, agent_id: str, round_: int, v: float, importance: int) -> None:
        if memory_id in self.contributions:
            return  # a redelivered post counts once
        st = self.stances.setdefault(agent_id, AgentStance())
        before = st.flips
        against = st.apply(v, self.persona(agent_id).conviction, inertia="conviction" in self.features)
        if st.flips > before:
            self.flips_by_round[round_] = self.flips_by_round.get(round_, 0) + 1
        w = post_weight(self.persona(agent_id), importance, against=against, features=self.features)
        self.contributions[memory_id] = Contribution(memory_id, agent_id, round_, v, w)
        self.stance_at_round.setdefault(round_, {})[agent_id] = st.stance

    def add_reflection(self, memory_id: str, agent_id: str, round_: int, v: float) -> None:
        if "reflection" not in self.features or memory_id in self.contributions:
            return
        w = reflection_weight(self.persona(agent_id), self.features)
        self.contributions[memory_id] = Contribution(memory_id, agent_id, round_, v, w)

    def add_conflict(self, old_memory_id: str) -> None:
        if "contradiction" in self.features:
            self.superseded.add(old_memory_id)

    def verdict(self, round_: int, ts: int) -> dict:
        counted = [c for c in self.contributions.values()
                   if c.round <= round_ and c.memory_id not in self.superseded and c.weight > 0]
        held: dict[str, int] = {}
        for r in sorted(k for k in self.stance_at_round if k <= round_):
            held.update(self.stance_at_round[r])
        return verdict_record(
            sim_id=self.sim_id, question=self.question, round_=round_, ts=ts,
            weighted_sum=sum(c.valence * c.weight for c in counted), weight_sum=sum(c.weight for c in counted),
            n=len(counted), authors=len({c.agent_id for c in counted}), stances=list(held.values()),
            flips=self.flips_by_round.get(round_, 0), backend=self.backend)
