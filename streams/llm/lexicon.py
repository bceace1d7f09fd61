"""Small text features shared by the deterministic backend and embedder.

A hand-written polarity lexicon (weights 1..3, VADER-like) with negation and
intensifier handling, stop words, and a crude suffix stemmer. Small on
purpose: it has to be predictable enough to write tests against, and good
enough that offline runs produce sensible memories.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

_TOKEN = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?|\d+(?:[.,]\d+)?%?")

POLARITY: dict[str, float] = {
    # positive
    "good": 1.5, "great": 2.5, "excellent": 3.0, "amazing": 3.0, "awesome": 3.0,
    "wonderful": 3.0, "fantastic": 3.0, "love": 3.0, "loved": 3.0, "loves": 3.0,
    "like": 1.0, "likes": 1.0, "enjoy": 2.0, "happy": 2.5, "glad": 2.0, "hope": 1.5,
    "hopeful": 2.0, "support": 1.5, "supports": 1.5, "agree": 1.5, "best": 2.5,
    "better": 1.5, "beautiful": 2.5, "brilliant": 3.0, "fair": 1.5, "safe": 1.5,
    "success": 2.0, "win": 2.0, "wins": 2.0, "proud": 2.0, "trust": 2.0,
    "helpful": 2.0, "nice": 1.5, "positive": 1.5, "benefit": 1.5, "thrilled": 3.0,
    "excited": 2.5, "grateful": 2.5, "perfect": 3.0, "right": 1.0, "works": 1.0,
    "approve": 2.0, "favor": 1.5, "favour": 1.5, "welcome": 1.5, "improve": 1.5,
    "improved": 1.5, "honest": 2.0, "kind": 1.5, "thanks": 1.5, "thank": 1.5,
    # negative
    "bad": -2.0, "terrible": -3.0, "awful": -3.0, "horrible": -3.0, "hate": -3.0,
    "hated": -3.0, "hates": -3.0, "dislike": -2.0, "angry": -2.5, "furious": -3.0,
    "sad": -2.0, "worse": -2.0, "worst": -3.0, "wrong": -2.0, "disgrace": -3.0,
    "disgusting": -3.0, "corrupt": -3.0, "lie": -2.5, "lies": -2.5, "liar": -3.0,
    "fail": -2.0, "fails": -2.0, "failed": -2.0, "failure": -2.5, "dangerous": -2.5,
    "unsafe": -2.0, "unfair": -2.5, "oppose": -2.0, "opposes": -2.0, "against": -1.0,
    "disagree": -1.5, "problem": -1.5, "crisis": -2.5, "scandal": -3.0, "threat": -2.5,
    "attack": -2.5, "fear": -2.0, "afraid": -2.0, "worried": -2.0, "ugly": -2.0,
    "stupid": -2.5, "useless": -2.5, "broken": -2.0, "poor": -1.5, "harm": -2.5,
    "harmful": -2.5, "shame": -2.5, "shameful": -3.0, "outrage": -3.0, "outrageous": -3.0,
    "disaster": -3.0, "ridiculous": -2.0, "annoying": -2.0, "boring": -1.5,
    "negative": -1.5, "reject": -2.0, "dishonest": -2.5, "cruel": -3.0, "waste": -2.0,
}

NEGATORS = frozenset(
    "not no never none nobody nothing neither nor without hardly barely cannot "
    "don't doesn't didn't isn't aren't wasn't weren't won't wouldn't can't "
    "couldn't shouldn't haven't hasn't hadn't dont doesnt didnt isnt arent "
    "wasnt cant wont".split()
)
INTENSIFIERS = {
    "very": 1.4, "really": 1.3, "extremely": 1.6, "so": 1.3, "totally": 1.4,
    "absolutely": 1.6, "completely": 1.5, "utterly": 1.6, "incredibly": 1.5,
    "slightly": 0.6, "somewhat": 0.7, "kinda": 0.7,
}
OPINION_MARKERS = frozenset(
    "think believe feel should must never always everyone nobody need demand "
    "insist honestly clearly obviously".split()
)
STOPWORDS = frozenset(
    "a an the and or but if then than so of to in on at by for with from as is "
    "are was were be been being am i me my mine we us our you your he him his she "
    "her it its they them their this that these those there here what which who "
    "whom whose when where why how all any both each few more most other some "
    "such only own same too very can will just do does did doing have has had "
    "having about into over after before again further once up down out off "
    "also would could should may might must shall im it's i'm i've i'd i'll "
    "you're we're they're that's there's what's let's ok okay yes yeah oh really "
    "get got go going gone one two just still even much many lot "
    # memory boilerplate: observation and reflection wording, not subjects
    "liked disliked post posts comment followed muted searched refreshed feed "
    "believe remember keep keeping seeing come comes lately feels anyone "
    "nobody someone something people memory memories".split()
)

_NEGATION_SCOPE = 3  # a negator flips polar words up to 3 tokens after it
_NEGATION_FACTOR = -0.75  # "not great" is milder than "terrible"
_ALPHA = 15.0  # VADER's normalisation constant: score / sqrt(score^2 + alpha)


@lru_cache(maxsize=8192)
def tokens(text: str) -> tuple[str, ...]:
    """Lower-cased word tokens. Cached (the texts of the last few thousand
    events, some MB), and a tuple so that no caller can change the cached
    value: a text is tokenised by importance, the embedder, valence and the
    contradiction reading, one after another."""
    return tuple(t.lower() for t in _TOKEN.findall(text))


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Crude suffix stripping so 'parks'/'park', 'voting'/'vote' meet.
    Cached: a vocabulary is small and every text's words are stemmed."""
    for suffix, keep in (("'s", 0), ("ies", 1), ("ing", 0), ("ed", 0), ("es", 0), ("s", 0)):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)]
            return base + ("y" if suffix == "ies" else "") if keep else base
    return word


def raw_polarity(text: str) -> float:
    """Sum of lexicon weights with negation and intensifiers applied."""
    toks = tokens(text)
    score = 0.0
    for i, tok in enumerate(toks):
        weight = POLARITY.get(tok)
        if weight is None:
            continue
        window = toks[max(0, i - _NEGATION_SCOPE) : i]
        if any(w in NEGATORS or w.endswith("n't") for w in window):
            weight *= _NEGATION_FACTOR
        if i > 0 and toks[i - 1] in INTENSIFIERS:
            weight *= INTENSIFIERS[toks[i - 1]]
        score += weight
    if score and "!" in text:
        score *= 1.0 + min(text.count("!"), 3) * 0.1
    return score


@lru_cache(maxsize=65536)
def valence(text: str) -> float:
    """Polarity squashed into [-1, 1]. Cached: one text is read by several
    steps (importance, reflection, contradiction)."""
    score = raw_polarity(text)
    return max(-1.0, min(1.0, score / math.sqrt(score * score + _ALPHA)))


def label(v: float, threshold: float = 0.15) -> str:
    if v > threshold:
        return "positive"
    if v < -threshold:
        return "negative"
    return "neutral"


def content_words(text: str) -> list[str]:
    """Topic-bearing words: no stop words, polar words, negators or numbers."""
    out = []
    for tok in tokens(text):
        if len(tok) < 3 or tok in STOPWORDS or tok in POLARITY or tok in NEGATORS:
            continue
        if tok in INTENSIFIERS or tok[0].isdigit():
            continue
        out.append(tok)
    return out


def strong_word_count(text: str) -> int:
    return sum(1 for t in tokens(text) if abs(POLARITY.get(t, 0.0)) >= 2.5)
