"""A seeded synthetic population and its rounds of posts, built from an eval
case folder (``seed.md``, ``question.md``), deterministic for a seed.

Stance: each agent's initial stance is drawn around the *seed document's*
lean, read with this module's own small cue list (deliberately not the
verdict's lexicon model: the generator and the scorer must not share the rule
that makes them agree). Agents then drift toward the posts they see and voice
their stance through templates whose wording varies by archetype.

The generator knows the aggregate it generated; it is returned with the
events (``SyntheticRun.truth``) so eval can report verdict vs that aggregate.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from connectors.events import OutEvent
from streams.ids import stable_id
from streams.topics import AGENT_LOG, PERSONAS, ROUNDS, agent_key, sim_key

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: synthetic runs start here
ROUND_MS = 30 * 60 * 1000  # MiroFish's default round: 30 simulated minutes

# Archetype -> (share of population, credibility as in MiroFish's defaults).
ARCHETYPES = {
    "normal": (0.70, 0.40),
    "media": (0.10, 0.80),
    "expert": (0.08, 0.85),
    "bot": (0.07, 0.15),
    "troll": (0.05, 0.10),
}

_PRO_CUES = ("support", "benefit", "improve", "popular", "success", "growth", "approve", "strong", "lead", "gain", "win", "favour", "favor", "welcome", "praise")
_CON_CUES = ("oppose", "cost", "scandal", "decline", "fail", "protest", "concern", "risk", "criticis", "critic", "loss",
             "burden", "against", "anger", "angry", "backlash", "weak", "complain", "confus", "mistake", "mock",
             "unfair", "warn", "disaster", "hurt", "lag")
_PRO_CUES = _PRO_CUES + ("prefer", "enjoy", "improve", "faster", "quieter", "compliance", "welcomed", "favourable")
_STOP = set("the a an and or of to in on for with by is are was were be been it its this that as at from will would could should their they them his her not no yes what which who how do does did has have had than then over under into more most less about after before can may".split())

PRO_TEMPLATES = {
    "normal": ["Honestly {topic} looks like a good thing to me.", "I'm glad about {topic}, it will help people like us.", "More and more convinced {topic} is the right call."],
    "media": ["Report: broad support building for {topic}, sources say.", "Analysis: {topic} wins over key groups."],
    "expert": ["The evidence on {topic} is encouraging; benefits outweigh costs.", "Data suggest {topic} delivers real improvements."],
    "bot": ["{topic} is great!!! Support {topic} now!", "Best news today: {topic}! Love it!"],
    "troll": ["lol the haters of {topic} are clueless, it's obviously great", "imagine opposing {topic} in this year lmao, it's a win"],
}
CON_TEMPLATES = {
    "normal": ["I'm worried {topic} will hurt people like us.", "Not convinced by {topic} at all, it seems like a bad idea.", "{topic} is a mistake and I'm against it."],
    "media": ["Report: backlash grows against {topic}, critics warn of harm.", "Analysis: anger over {topic} is spreading."],
    "expert": ["The evidence on {topic} is poor; the harm likely outweighs any benefit.", "Data raise serious concerns about {topic}."],
    "bot": ["{topic} is a disaster!!! Stop {topic} now!", "Worst news today: {topic}. Terrible."],
    "troll": ["lol {topic} is a total joke, what a failure", "imagine supporting {topic}, pathetic lmao"],
}
# Undecided voices: no stance words, no sentiment words.
NEUTRAL_TEMPLATES = ["Still making up my mind about {topic}.", "Anyone have sources on {topic}?", "Reading up on {topic} tonight."]


@dataclass
class Agent:
    agent_id: str
    name: str
    archetype: str
    credibility: float
    conviction: float
    stance: float
    traits: dict[str, float]
    activity: float


@dataclass
class SyntheticRun:
    sim_id: str
    events: list[OutEvent]
    agents: list[Agent]
    # What the generator itself produced: mean stance of posts, weighted by
    # credibility, per round. Not derived from truth.json.
    truth: dict = field(default_factory=dict)


def _read(case_dir: Path, name: str) -> str:
    path = case_dir / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; an eval case folder holds seed.md and question.md")
    return path.read_text(encoding="utf-8")


def topic_phrase(question: str, seed: str) -> str:
    """A short noun phrase naming what the case is about."""
    caps = [re.sub(r"^(The|A|An|This|That)\s+", "", c) for c in re.findall(r"\b([A-Z][a-z]+(?:\s+[A-Z][a-z]+)+)\b", seed)]
    caps = [c for c in caps if " " in c]
    if caps:
        return Counter(caps).most_common(1)[0][0]
    words = [w for w in re.findall(r"[a-zA-Z]{4,}", question.lower()) if w not in _STOP]
    return " ".join(words[:3]) or "this"


def seed_lean(seed: str) -> float:
    """-1..1 from counts of pro and con cues in the seed document."""
    text = seed.lower()
    pro = sum(text.count(c) for c in _PRO_CUES)
    con = sum(text.count(c) for c in _CON_CUES)
    return 0.0 if pro + con == 0 else (pro - con) / (pro + con)


def generate(case_dir: Path, *, sim_id: str, seed: int = 42, agents: int = 40, rounds: int = 6) -> SyntheticRun:
    seed_text = _read(case_dir, "seed.md")
    question = _read(case_dir, "question.md").strip()
    rng = random.Random(f"{seed}:{sim_id}")
    topic = topic_phrase(question, seed_text)
    lean = seed_lean(seed_text)
    ref = f"synthetic:{case_dir.name}:{seed}"

    population = _population(rng, agents, lean)
    events: list[OutEvent] = []

    def emit(spec, key, record, type_name: str = ""):
        events.append(OutEvent(spec, key, record, ref, type=type_name))

    for a in population:
        emit(PERSONAS, agent_key(sim_id, a.agent_id), {
            "event_id": stable_id("synthetic-persona", sim_id, seed, a.agent_id),
            "sim_id": sim_id, "round": 0, "ts": START_MS, "agent_id": a.agent_id, "name": a.name,
            "archetype": a.archetype, **a.traits, "conviction": a.conviction, "credibility": a.credibility,
            "initial_stance": round(a.stance, 4), "bio": f"{a.archetype} account following {topic}",
            "source": "synthetic",
        })

    truth_rounds = []
    last_posts: list[tuple[str, float, str]] = []
    for rnd in range(rounds):
        t0 = START_MS + rnd * ROUND_MS
        emit(ROUNDS, sim_key(sim_id), _marker(sim_id, seed, rnd, t0, "round_start", ref))
        posts_this_round: list[tuple[str, float, str]] = []
        num, den, n = 0.0, 0.0, 0
        for i, a in enumerate(population):
            if rng.random() > a.activity:
                continue
            ts = t0 + 1000 * (i + 1)
            # See a post from the previous round and drift toward it; low
            # conviction drifts more.
            if last_posts:
                seen_id, seen_stance, seen_author = rng.choice(last_posts)
                a.stance += (1 - a.conviction) * 0.15 * (seen_stance - a.stance)
                emit(AGENT_LOG, agent_key(sim_id, a.agent_id), {
                    "event_id": stable_id("synthetic-obs", sim_id, seed, rnd, a.agent_id, seen_id),
                    "sim_id": sim_id, "round": rnd, "ts": ts - 500, "agent_id": a.agent_id, "agent_name": a.name,
                    "platform": "synthetic", "action": "LIKE_POST" if (seen_stance > 0) == (a.stance > 0) else "DISLIKE_POST",
                    "content": f"I {'liked' if (seen_stance > 0) == (a.stance > 0) else 'disliked'} a post by {seen_author} about {topic}",
                    "target_id": seen_id, "args_json": "{}", "source": "synthetic", "source_ref": ref,
                }, "Observation")
            voiced = max(-1.0, min(1.0, a.stance + rng.gauss(0, 0.15)))
            text = _utter(rng, a.archetype, voiced, topic)
            pid = stable_id("synthetic-post", sim_id, seed, rnd, a.agent_id)
            emit(AGENT_LOG, agent_key(sim_id, a.agent_id), {
                "event_id": pid, "sim_id": sim_id, "round": rnd, "ts": ts, "agent_id": a.agent_id,
                "agent_name": a.name, "platform": "synthetic", "action": "CREATE_POST", "content": text,
                "post_id": pid[:12], "parent_id": None, "source": "synthetic", "source_ref": ref,
            }, "Post")
            posts_this_round.append((pid[:12], voiced, a.name))
            num += voiced * a.credibility
            den += a.credibility
            n += 1
        emit(ROUNDS, sim_key(sim_id), _marker(sim_id, seed, rnd, t0 + ROUND_MS - 1, "round_end", ref, actions=n))
        truth_rounds.append({"round": rnd, "posts": n, "weighted_stance": round(num / den, 4) if den else 0.0})
        last_posts = posts_this_round or last_posts
    total_w = sum(r["weighted_stance"] * r["posts"] for r in truth_rounds)
    total_n = sum(r["posts"] for r in truth_rounds)
    return SyntheticRun(sim_id, events, population, {
        "topic": topic, "seed_lean": round(lean, 4), "rounds": truth_rounds,
        "mean_weighted_stance": round(total_w / total_n, 4) if total_n else 0.0,
    })


def _population(rng: random.Random, n: int, lean: float) -> list[Agent]:
    names = list(ARCHETYPES)
    weights = [ARCHETYPES[k][0] for k in names]
    out = []
    for i in range(n):
        arch = rng.choices(names, weights)[0]
        traits = {t: round(rng.betavariate(2, 2), 3) for t in ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")}
        stance = max(-1.0, min(1.0, rng.gauss(lean * 0.6, 0.45)))
        if arch == "troll":
            stance = math.copysign(1.0, stance or 1.0)
        out.append(Agent(
            agent_id=f"agent-{i:04d}", name=f"{arch.title()} {i}", archetype=arch,
            credibility=ARCHETYPES[arch][1], conviction=round(0.3 + 0.6 * (1 - traits["openness"]), 3),
            stance=stance, traits=traits, activity=0.35 + 0.6 * traits["extraversion"],
        ))
    return out


def _utter(rng: random.Random, archetype: str, stance: float, topic: str) -> str:
    if abs(stance) < 0.15:
        return rng.choice(NEUTRAL_TEMPLATES).format(topic=topic)
    table = PRO_TEMPLATES if stance > 0 else CON_TEMPLATES
    return rng.choice(table[archetype]).format(topic=topic)


def _marker(sim_id: str, seed: int, rnd: int, ts: int, kind: str, ref: str, actions: int | None = None) -> dict:
    return {
        "event_id": stable_id("synthetic-round", sim_id, seed, rnd, kind), "sim_id": sim_id, "round": rnd, "ts": ts,
        "kind": kind, "platform": "synthetic", "simulated_hour": (rnd * 30) // 60, "actions_count": actions,
        "agents_count": None, "total_rounds": None, "source": "synthetic", "source_ref": ref,
    }
