"""MiroFish profile files -> Persona events.

* ``twitter_profiles.csv``: user_id, name, username, user_char, description;
  agent ``twitter-<user_id>``.
* ``reddit_profiles.json``: a list of {realname, username, bio, persona, age,
  gender, mbti, country, profession, interested_topics}; agent
  ``reddit-<position>`` (MiroFish numbers reddit agents by position).

MiroFish profiles carry no Big Five numbers or credibility, so they are
derived, and the rules are stated here:
* archetype from the profile text: media (news, journalist, reporter,
  outlet), expert (professor, scientist, doctor, economist, researcher,
  analyst, expert), bot, troll; otherwise normal;
* credibility by archetype, MiroFish's defaults: normal 0.4, media 0.8,
  expert 0.85, bot 0.15, troll 0.10;
* Big Five from the MBTI letters when given (E/I extraversion 0.7/0.3, N/S
  openness 0.7/0.4, F/T agreeableness 0.65/0.45, J/P conscientiousness
  0.65/0.4), else 0.5; neuroticism 0.5;
* conviction 0.5, 0.8 for bots and trolls; initial stance 0 (the verdict
  learns stances from posts) unless the simulation's config gives one
  (``connectors.mirofish_config``: its stance, entity type and name win).
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Callable, Iterator

from connectors.events import BadLine, OutEvent
from connectors.synthetic import ARCHETYPES
from streams.ids import stable_id
from streams.topics import PERSONAS, agent_key

PROFILE_FILES = ("twitter_profiles.csv", "reddit_profiles.json")
_RULES = [
    ("media", re.compile(r"\b(news|journalist|reporter|outlet|media|newspaper|editor)\b", re.I)),
    ("expert", re.compile(r"\b(professor|scientist|doctor|economist|researcher|analyst|expert|phd)\b", re.I)),
    ("bot", re.compile(r"\bbot\b", re.I)),
    ("troll", re.compile(r"\btroll\b", re.I)),
]


def archetype_of(text: str) -> str:
    for name, rule in _RULES:
        if rule.search(text):
            return name
    return "normal"


def big_five(mbti: str | None) -> dict[str, float]:
    t = (mbti or "").upper()
    valid = len(t) == 4 and t[0] in "EI" and t[1] in "NS" and t[2] in "FT" and t[3] in "JP"
    if not valid:
        return dict.fromkeys(("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism"), 0.5)
    return {"extraversion": 0.7 if t[0] == "E" else 0.3, "openness": 0.7 if t[1] == "N" else 0.4,
            "agreeableness": 0.65 if t[2] == "F" else 0.45, "conscientiousness": 0.65 if t[3] == "J" else 0.4,
            "neuroticism": 0.5}


def persona(sim_id: str, agent_id: str, name: str, text: str, mbti: str | None, source_ref: str,
            overrides: dict | None = None, source: str = "mirofish-profile", round_: int = 0, ts: int = 0) -> dict:
    """A Persona from profile text; ``overrides`` (from a simulation config:
    initial_stance, archetype, name) win over what the text suggests."""
    o = overrides or {}
    arch = o.get("archetype") if o.get("archetype", "normal") != "normal" else archetype_of(text)
    name = name or o.get("name", "") or agent_id
    return {
        "event_id": stable_id("persona", sim_id, agent_id, name, text, mbti, sorted(o.items())), "sim_id": sim_id,
        "round": round_, "ts": ts, "agent_id": agent_id, "name": name, "archetype": arch, **big_five(mbti),
        "conviction": 0.8 if arch in ("bot", "troll") else 0.5, "credibility": ARCHETYPES[arch][1],
        "initial_stance": float(o.get("initial_stance", 0.0)), "bio": text[:2000], "source": source,
    }


Overrides = Callable[[str], dict]  # MiroFish agent number -> persona fields from the simulation config


def parse_file(path: Path, *, sim_id: str, overrides: Overrides | None = None) -> Iterator[OutEvent | BadLine]:
    over = overrides or (lambda _n: {})
    if path.name.endswith(".csv"):
        yield from _twitter(path, sim_id, over)
    else:
        yield from _reddit(path, sim_id, over)


def _twitter(path: Path, sim_id: str, over: Overrides) -> Iterator[OutEvent | BadLine]:
    raw_lines = path.read_bytes().splitlines(keepends=True)
    text = b"".join(raw_lines).decode("utf-8", errors="replace")
    for row_no, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        ref = f"{path}:{row_no}"
        uid = (row.get("user_id") or "").strip()
        raw = raw_lines[row_no - 1] if row_no - 1 < len(raw_lines) else b""
        if not uid:
            yield BadLine(ref, "missing required field", raw, field="user_id", sim_id=sim_id)
            continue
        agent = f"twitter-{uid}"
        desc = " ".join(filter(None, (row.get("user_char"), row.get("description"))))
        yield OutEvent(PERSONAS, agent_key(sim_id, agent),
                       persona(sim_id, agent, row.get("name") or row.get("username") or "", desc, None, ref, over(uid)),
                       ref)


def _reddit(path: Path, sim_id: str, over: Overrides) -> Iterator[OutEvent | BadLine]:
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        yield BadLine(f"{path}:1", f"invalid JSON: {exc}", path.read_bytes()[:65536], sim_id=sim_id)
        return
    if not isinstance(items, list):
        yield BadLine(f"{path}:1", "expected a JSON list of profiles", path.read_bytes()[:65536], sim_id=sim_id)
        return
    for i, p in enumerate(items):
        ref = f"{path}:[{i}]"
        if not isinstance(p, dict):
            yield BadLine(ref, f"expected an object, got {type(p).__name__}", json.dumps(p).encode(), sim_id=sim_id)
            continue
        agent = f"reddit-{i}"
        text = " ".join(str(p.get(k) or "") for k in ("bio", "persona", "profession"))
        yield OutEvent(PERSONAS, agent_key(sim_id, agent),
                       persona(sim_id, agent, str(p.get("realname") or p.get("username") or ""), text,
                               p.get("mbti"), ref, over(str(i))), ref)
