"""MiroFish's ``simulation_config.json`` -> the simulation's question and
each configured agent's traits.

What is read, and into what (the publish summary lists the fields used):
* ``simulation_requirement`` -> the question the verdict answers (a
  ``--question`` on the command line wins);
* ``agent_configs[].stance`` -> Persona ``initial_stance``: supportive +0.5,
  opposing -0.5, neutral and observer 0 (a number in -1..1 is taken as is);
* ``agent_configs[].entity_type`` -> archetype (``MediaOutlet`` -> media,
  ``Professor`` -> expert, ... by the same rules as profile text), which sets
  credibility by MiroFish's defaults;
* ``agent_configs[].entity_name`` -> the persona's name when the profile
  gives none.
Everything else (time_config, event_config, activity levels, influence
weights: OASIS's feed and scheduling knobs, not traits the verdict weighs) is
reported as not used. ``agent_configs[].agent_id`` is the agent's id on every
platform (MiroFish configures one agent per entity and runs it on both).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from connectors.events import OutEvent
from connectors.profiles import archetype_of
from streams.ids import stable_id
from streams.topics import SIMULATIONS, sim_key

CONFIG_FILE = "simulation_config.json"
STANCES = {"supportive": 0.5, "support": 0.5, "for": 0.5, "positive": 0.5, "opposing": -0.5, "oppose": -0.5,
           "against": -0.5, "negative": -0.5, "neutral": 0.0, "observer": 0.0}


class ConfigError(ValueError):
    def __init__(self, path: Path, field: str, reason: str) -> None:
        super().__init__(f"{path}: [{field}] {reason}")
        self.field = field


@dataclass
class SimConfig:
    path: Path | None
    question: str = ""
    question_from: str = ""
    agents: dict[str, dict] = field(default_factory=dict)  # agent id (as MiroFish numbers it) -> persona fields
    used: dict[str, int] = field(default_factory=dict)  # config field -> how many values were used
    unused: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # "agent_configs[3].stance: 'maybe'"

    def overrides(self, agent_number: str) -> dict:
        return self.agents.get(agent_number, {})


def split_words(text: str) -> str:
    """``MediaOutlet`` -> ``Media Outlet``: entity types are CamelCase."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text).replace("_", " ")


def stance_value(raw: object) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        return float(raw) if -1.0 <= raw <= 1.0 else None
    if isinstance(raw, str):
        return STANCES.get(raw.strip().lower())
    return None


def read(path: Path, *, question: str | None = None) -> SimConfig:
    """Raises ConfigError (file, field, reason) for a config that is not JSON
    or not an object; values it cannot read are listed, not guessed."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(path, "(file)", f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ConfigError(path, "(file)", f"expected a JSON object, got {type(obj).__name__}")
    cfg = SimConfig(path)
    req = obj.get("simulation_requirement")
    if question:
        cfg.question, cfg.question_from = question, "--question"
    elif isinstance(req, str) and req.strip():
        cfg.question, cfg.question_from = req.strip(), f"{path.name}:simulation_requirement"
        cfg.used["simulation_requirement"] = 1
    agents = obj.get("agent_configs") or []
    if not isinstance(agents, list):
        raise ConfigError(path, "agent_configs", f"expected a list, got {type(agents).__name__}")
    for i, a in enumerate(agents):
        if not isinstance(a, dict) or isinstance(a.get("agent_id"), bool) or not isinstance(a.get("agent_id"), (int, str)):
            cfg.unreadable.append(f"agent_configs[{i}]: no agent_id")
            continue
        fields: dict = {}
        if "stance" in a:
            value = stance_value(a["stance"])
            if value is None:
                cfg.unreadable.append(f"agent_configs[{i}].stance: {a['stance']!r:.40}")
            else:
                fields["initial_stance"] = value
        etype = a.get("entity_type")
        if isinstance(etype, str) and etype.strip():
            fields["archetype"] = archetype_of(split_words(etype))
        name = a.get("entity_name")
        if isinstance(name, str) and name.strip():
            fields["name"] = name.strip()
        for k in fields:
            src = {"initial_stance": "stance", "archetype": "entity_type", "name": "entity_name"}[k]
            cfg.used[f"agent_configs[].{src}"] = cfg.used.get(f"agent_configs[].{src}", 0) + 1
        cfg.agents[str(a["agent_id"])] = fields
    cfg.unused = sorted(k for k in obj if k not in ("simulation_requirement", "agent_configs"))
    return cfg


def simulation_event(cfg: SimConfig, *, sim_id: str, platforms: list[str], source: str) -> OutEvent:
    """The simulation's own event: its question and where it came from."""
    ref = str(cfg.path) if cfg.path else "--question"
    record = {
        "event_id": stable_id("simulation", sim_id, cfg.question, cfg.question_from, sorted(cfg.used)),
        "sim_id": sim_id, "round": 0, "ts": 0, "question": cfg.question, "question_source": cfg.question_from,
        "platforms": sorted(platforms), "agents_configured": len(cfg.agents), "fields_used": sorted(cfg.used),
        "source": source, "source_ref": ref,
    }
    return OutEvent(SIMULATIONS, sim_key(sim_id), record, ref)

