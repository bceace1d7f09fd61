"""Stance models: how a post's text becomes a valence toward the simulation's
question, and whether the model could read it at all.

Every model answers with a :class:`Reading`: the valence (-1..1), a status
and the language it saw. The status is what keeps a verdict honest:

* ``read``: the model read the text and found a stance signal (|valence| >= 0.2);
* ``no-signal``: it read the text and found none (counted as neutral evidence);
* ``unreadable``: it cannot read the text (a language it does not know, or no
  words at all). Such a post is left out of the support ratio and counted
  as not covered, never passed off as neutral.

Models (``MURMUR_STANCE__MODEL``):

* ``lexicon`` (``lexicon-v2``, the offline default): VADER's sentiment plus
  stance verbs and off-topic damping (below), for English text. It reads
  sentiment more than stance: on TweetEval's stance data it scores a macro-F1
  near 30 (``murmur eval stance``), so verdicts built on it carry low
  confidence unless the posts are outspoken.
* ``linear:<file>``: a logistic regression over hashed word and character
  n-grams, trained on labelled tweets by ``murmur eval stance --train DIR``.
  It reads the targets it was trained on well (TweetEval validation macro-F1
  near 63) and a new question barely better than the lexicon (about 33 when
  each target is held out of training): use it where labelled data for the
  question exists.
* the ``fast`` LLM role (``MURMUR_LLM__BACKEND=vllm``): reads any language the
  model knows; its answer is a reading too.

Language is identified by py3langid (langid.py's maintained fork: a naive
Bayes model over byte n-grams, deterministic). Text mostly in a non-Latin
script, or confidently identified as another language, is unreadable for the
English models.

The lexicon, step by step:
  1. VADER's compound score of the post (negation, intensifiers,
     punctuation and emoji rules);
  2. explicit stance verbs count (+0.5 for support/favour/approve/welcome/
     back/for it, -0.5 for oppose/against/reject/stop/ban/scrap/repeal/
     backlash/opposition/critics), because sentiment words alone miss "I
     oppose the tax" and "I'm glad they stopped it";
  3. a post that shares no content word with the question counts at half
     strength (off-topic mood, not stance);
  4. clipped to [-1, 1].
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Protocol

STANCE_MIN = 0.2
READ, NO_SIGNAL, UNREADABLE = "read", "no-signal", "unreadable"
LEXICON = "lexicon-v2"
LANGUAGE_SURE = 0.9  # langid probability above which a non-English label is believed

_PRO = re.compile(r"\b(support(s|ed|ing)?|favou?r(s|ed)?|approve[sd]?|welcome[sd]?|back(ing)?|in favou?r|for it|"
                  r"yes on|vote yes|endorse[sd]?|glad|convinced me)\b", re.I)
_CON = re.compile(r"\b(oppose[sd]?|opposing|against|reject(s|ed)?|stop(ped)?|ban(ned)?|scrap(ped)?|repeal(ed)?|"
                  r"vote no|no on|boycott|mistake|disaster|backlash|opposition|critics?)\b", re.I)
_WORD = re.compile(r"[a-z]{4,}")
_ASCII_LETTER = re.compile(r"[A-Za-z]")  # exactly the characters both isalpha() and isascii()
_STOP = frozenset("will would could should about over what which with from that this they them their there have "
                  "been were into than then when where whether public opinion trend positive negative overall "
                  "simulated period consider general sentiment support".split())


@dataclass(frozen=True)
class Reading:
    valence: float
    status: str
    language: str
    model: str
    reliability: float = 1.0  # the model's measured stance accuracy (macro-F1 / 100); 1.0 when unmeasured


def status_of(valence: float) -> str:
    return READ if abs(valence) >= STANCE_MIN else NO_SIGNAL


class StanceModel(Protocol):
    name: str
    reliability: float

    def read(self, text: str, question: str) -> Reading: ...


# -- language ---------------------------------------------------------------------
@lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)


def load_language_model() -> None:
    """Load the language model now (about 0.7 s: an LZMA-packed file), not
    at the first post a stage reads."""
    _identifier()


def language_of(text: str) -> tuple[str, float]:
    """(ISO 639-1 code, probability); ("", 0) for text without letters."""
    if not any(c.isalpha() for c in text):
        return "", 0.0
    lang, p = _identifier().classify(text)
    return lang, float(p)


def english_readable(text: str) -> tuple[bool, str]:
    """Whether an English-only model can read the text, and its language."""
    # Counted in C (map, a regex), not a Python loop per character: this
    # was a sixth of a replay's time on real posts (bench/b5_compute.py).
    letters = sum(map(str.isalpha, text))
    if not letters:
        return False, ""
    latin = len(_ASCII_LETTER.findall(text)) / letters
    lang, p = language_of(text)
    if latin < 0.5:
        return False, lang
    if lang != "en" and p >= LANGUAGE_SURE:
        return False, lang
    return True, "en"  # English, or too short or mixed to say otherwise


# -- the lexicon model ------------------------------------------------------------
@lru_cache(maxsize=1)
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def subject_words(question: str) -> frozenset[str]:
    return frozenset(w for w in _WORD.findall(question.lower()) if w not in _STOP)


def lexicon_valence(text: str, question: str = "") -> float:
    score = _vader().polarity_scores(text)["compound"]
    if _PRO.search(text):
        score += 0.5
    if _CON.search(text):
        score -= 0.5
    subject = subject_words(question)
    if subject and not (subject & set(_WORD.findall(text.lower()))):
        score *= 0.5
    return max(-1.0, min(1.0, round(score, 6)))


class LexiconModel:
    name = LEXICON
    # Pooled macro-F1 of favor and against on TweetEval stance, validation
    # split (human labels, five targets), measured by
    # `murmur eval stance --data <tweeteval-stance>`: 27.8. A verdict read by
    # it is never more confident than that.
    reliability = 0.28

    def read(self, text: str, question: str) -> Reading:
        ok, lang = english_readable(text)
        if not ok:
            return Reading(0.0, UNREADABLE, lang, self.name, self.reliability)
        v = lexicon_valence(text, question)
        return Reading(v, status_of(v), lang, self.name, self.reliability)


# -- the trained linear model -----------------------------------------------------------
N_FEATURES = 2 ** 18
LABELS = ("none", "against", "favor")  # TweetEval's 0, 1, 2


def _vectorizers():
    from sklearn.feature_extraction.text import HashingVectorizer

    # Hashed features: the model file holds weights over hash buckets, never
    # the training data's words.
    words = HashingVectorizer(n_features=N_FEATURES, ngram_range=(1, 2), alternate_sign=False,
                              token_pattern=r"(?u)[#@]?\b\w+\b")
    chars = HashingVectorizer(n_features=N_FEATURES, analyzer="char_wb", ngram_range=(2, 5), alternate_sign=False)
    return words, chars


def _features(texts: list[str]):
    from scipy.sparse import hstack

    words, chars = _vectorizers()
    return hstack([words.transform(texts), chars.transform(texts)]).tocsr()


class LinearModel:
    """Logistic regression over hashed n-grams; valence = P(favor) - P(against)."""

    def __init__(self, coef, intercept, classes: list[int], meta: dict) -> None:
        import numpy as np

        # Rounded as the model file stores them, so a loaded model is the
        # trained one, name and all.
        self.coef = np.round(np.asarray(coef, dtype=float), 6)
        self.intercept = np.round(np.asarray(intercept, dtype=float), 6)
        self.classes = list(classes)
        self.meta = meta
        digest = hashlib.sha256(self.coef.tobytes() + self.intercept.tobytes()).hexdigest()[:8]
        self.name = f"linear-{digest}"
        # Measured when it was trained: cross-validated on its training data.
        self.reliability = float(meta.get("reliability", 1.0))

    @classmethod
    def train(cls, texts: list[str], labels: list[int], *, meta: dict | None = None, c: float = 1.0) -> "LinearModel":
        """Fit on everything; its reliability is the macro-F1 of favor and
        against of 5-fold cross-validated predictions on the same data (no
        held-out split is touched)."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold, cross_val_predict

        x = _features(texts)
        clf = LogisticRegression(C=c, max_iter=2000, class_weight="balanced")
        folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
        cv = cross_val_predict(clf, x, labels, cv=folds)
        scores = []
        for label in (1, 2):
            tp = sum(1 for p, g in zip(cv, labels) if p == label and g == label)
            pred, gold = sum(1 for p in cv if p == label), sum(1 for g in labels if g == label)
            scores.append(2 * tp / (pred + gold) if pred + gold else 0.0)
        clf.fit(x, labels)
        meta = {**(meta or {}), "reliability": round(sum(scores) / 2, 4), "trained_on_posts": len(texts)}
        return cls(clf.coef_, clf.intercept_, [int(k) for k in clf.classes_], meta)

    def valences(self, texts: list[str]) -> list[tuple[float, bool]]:
        """(P(favor) - P(against), whether favor or against is the most
        probable label: the model's own sign of a stance signal)."""
        import numpy as np

        z = _features(texts) @ self.coef.T + self.intercept
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        fav, ag, none = self.classes.index(2), self.classes.index(1), self.classes.index(0)
        return [(round(float(row[fav] - row[ag]), 6), int(row.argmax()) != none) for row in p]

    def read(self, text: str, question: str) -> Reading:
        ok, lang = english_readable(text)
        if not ok:
            return Reading(0.0, UNREADABLE, lang, self.name, self.reliability)
        v, signal = self.valences([text])[0]
        return Reading(v, READ if signal else NO_SIGNAL, lang, self.name, self.reliability)

    def save(self, path: Path) -> None:
        """Sparse JSON: the non-zero weights by bucket (gzip-sized, readable by any tool)."""
        import numpy as np

        rows = [{str(i): round(float(w), 6) for i in np.flatnonzero(row) for w in (row[i],)} for row in self.coef]
        path.write_text(json.dumps({"format": "murmur-stance-linear-1", "n_features": int(self.coef.shape[1]),
                                    "classes": self.classes, "intercept": self.intercept.tolist(), "coef": rows,
                                    "meta": self.meta}))

    @classmethod
    def load(cls, path: Path) -> "LinearModel":
        import numpy as np

        try:
            obj = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: not a stance model file ({exc})") from None
        if obj.get("format") != "murmur-stance-linear-1":
            raise ValueError(f"{path}: not a stance model file (format {obj.get('format')!r})")
        coef = np.zeros((len(obj["coef"]), obj["n_features"]))
        for r, row in enumerate(obj["coef"]):
            for i, w in row.items():
                coef[r, int(i)] = w
        return cls(coef, obj["intercept"], obj["classes"], obj.get("meta", {}))


def make_model(spec: str) -> StanceModel:
    """``lexicon`` or ``linear:<path>`` (the LLM role is the stance stage's own)."""
    if spec in ("", "lexicon", LEXICON):
        return LexiconModel()
    if spec.startswith("linear:"):
        return LinearModel.load(Path(spec.split(":", 1)[1]).expanduser())
    raise ValueError(f"unknown stance model {spec!r}: lexicon or linear:<model file>")


def read_all(model: StanceModel, texts: Iterable[str], question: str) -> list[Reading]:
    return [model.read(t, question) for t in texts]
