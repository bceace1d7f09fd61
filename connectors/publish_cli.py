"""What ``murmur publish`` does with its arguments: find the inputs, pick a
parser for each, publish with a progress bar on large inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from connectors import jsonl, mirofish, profiles, synthetic as synth
from connectors.events import Counts
from connectors.publisher import Item, Publisher
from streams.settings import Settings

PROGRESS_MIN_BYTES = 1 << 20


def expand(paths: list[Path]) -> list[Path]:
    """A MiroFish simulation folder stands for its profile files (published
    first, so personas precede posts) and its per-platform actions.jsonl."""
    out = []
    for p in paths:
        if p.is_dir():
            found = [p / f for f in profiles.PROFILE_FILES if (p / f).is_file()]
            found += sorted(p.glob("*/actions.jsonl")) + sorted(p.glob("actions.jsonl"))
            if not found:
                raise FileNotFoundError(f"{p}: no */actions.jsonl inside (expected a MiroFish simulation folder)")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return out


def sim_of(path: Path) -> str:
    if path.name in profiles.PROFILE_FILES:
        return path.parent.name
    if path.name == "actions.jsonl":
        return path.parent.parent.name if path.parent.name in mirofish.PLATFORMS else path.parent.name
    return path.stem


def detect(path: Path) -> str:
    if path.name == "actions.jsonl":
        return "mirofish"
    with path.open("rb") as fh:
        for raw in fh:
            if raw.strip():
                try:
                    obj = json.loads(raw)
                except ValueError:
                    return "jsonl"  # the parser will report the bad line
                if isinstance(obj, dict) and ("action_type" in obj or "event_type" in obj):
                    return "mirofish"
                return "jsonl"
    return "jsonl"


def items_for(path: Path, *, sim: str | None, fmt: str, platform: str | None) -> Iterator[Item]:
    if path.name in profiles.PROFILE_FILES:
        return profiles.parse_file(path, sim_id=sim or sim_of(path))
    kind = detect(path) if fmt == "auto" else fmt
    if kind == "mirofish":
        return mirofish.parse_file(path, sim_id=sim or sim_of(path), platform=platform)
    if kind == "jsonl":
        return jsonl.parse_file(path, sim_id=sim)
    raise ValueError(f"--format must be auto, mirofish or jsonl, not {fmt!r}")


def run_publish(settings: Settings, paths: list[Path], *, sim: str | None = None, fmt: str = "auto",
                platform: str | None = None, synthetic: Path | None = None, seed: int = 42, agents: int = 40,
                rounds: int = 6, show_progress: bool = True) -> Counts:
    publisher = Publisher(settings)
    if synthetic is not None:
        run = synth.generate(synthetic, sim_id=sim or f"{synthetic.name}-s{seed}", seed=seed, agents=agents, rounds=rounds)
        publisher.publish(run.events)
    for path in expand(paths):
        size = path.stat().st_size
        items = items_for(path, sim=sim, fmt=fmt, platform=platform)
        if show_progress and size >= PROGRESS_MIN_BYTES:
            from rich.progress import Progress

            with Progress(transient=True) as bar, path.open("rb") as fh:
                task = bar.add_task(f"publishing {path.name}", total=sum(1 for _ in fh))
                publisher.publish(items, progress=lambda n: bar.advance(task, n))
        else:
            publisher.publish(items)
    return publisher.counts
