"""What ``murmur publish`` does with its arguments: find the inputs, pick a
reader for each, publish what they hold (and, with ``--follow``, what they
grow by), store how far each was read, and summarise.

Inputs:
* a MiroFish simulation folder: ``simulation_config.json`` (the question and
  configured agents, first), the profile files (personas), then every
  ``<platform>/actions.jsonl``. OASIS databases in it (MiroFish keeps
  ``twitter_simulation.db`` and ``reddit_simulation.db`` there) are not
  published, since the logs carry the same actions, but resolve the ids the
  logs give without text (quotes, reposts);
* an OASIS database, or a folder holding only OASIS databases;
* a MiroFish ``actions.jsonl`` or a Murmur JSONL file;
* ``--synthetic CASE``: a seeded population.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from connectors import jsonl, mirofish, mirofish_config, oasis, profiles, synthetic as synth
from connectors.actions import PostIndex
from connectors.events import Item
from connectors.positions import Position, PositionStore
from connectors.publisher import Publisher
from connectors.sources import FileSource, LineSource, Polled, Source, TraceSource
from connectors.summary import Summary
from streams.kafka import create_topics
from streams.settings import Settings
from streams.topics import PUBLISHER_POSITIONS

INPUT_FORMATS = ("auto", "mirofish", "jsonl", "oasis")


@dataclass
class Options:
    sim: str | None = None
    input_format: str = "auto"
    platform: str | None = None
    question: str | None = None
    round_minutes: int = oasis.DEFAULT_ROUND_MINUTES
    follow: bool = False
    resume: bool = False  # skip what an earlier run stored as published (implied by follow)
    idle_timeout: float | None = None  # follow: stop after this long without new input
    poll_interval: float = 0.5
    dry_run: bool = False


def sim_of(path: Path) -> str:
    if path.is_dir():
        return path.resolve().name
    if path.name in profiles.PROFILE_FILES or path.name == mirofish_config.CONFIG_FILE:
        return path.parent.name
    if path.name == "actions.jsonl":
        return path.parent.parent.name if path.parent.name in mirofish.PLATFORMS else path.parent.name
    if oasis.is_oasis_file(path) and path.stem.endswith("_simulation"):
        return path.resolve().parent.name  # twitter_simulation.db and reddit_simulation.db of one run
    return path.stem


def detect(path: Path) -> str:
    if oasis.is_oasis_file(path):
        return "oasis"
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


@dataclass
class _Folder:
    """A MiroFish simulation folder being read: new platform logs and
    databases may appear while it runs."""

    path: Path
    sim_id: str
    index: PostIndex
    lookups: dict[str, oasis.Lookup] = field(default_factory=dict)
    logs: set[Path] = field(default_factory=set)
    dbs: set[Path] = field(default_factory=set)


class Plan:
    """The sources of one publish, in the order they are read."""

    def __init__(self, opts: Options, positions: dict[bytes, Position]) -> None:
        self.opts = opts
        self.positions = positions
        self.sources: list[Source] = []
        self.notes: list[str] = []
        self.sims: list[str] = []
        self.folders: list[_Folder] = []
        self.configs: list[mirofish_config.SimConfig] = []
        self._questioned: set[str] = set()

    def _resume(self, sim_id: str, name: str) -> Position | None:
        return self.positions.get(f"{sim_id}/{name}".encode())

    def _sim(self, sim_id: str) -> None:
        if sim_id not in self.sims:
            self.sims.append(sim_id)

    def add(self, path: Path) -> None:
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or folder")
        sim_id = self.opts.sim or sim_of(path)
        self._sim(sim_id)
        if path.is_dir():
            self._add_folder(path, sim_id)
        elif path.name in profiles.PROFILE_FILES:
            self.sources.append(self._profile_source(path, sim_id, path.name, None))
        else:
            self._add_file(path, sim_id)

    def _add_file(self, path: Path, sim_id: str) -> None:
        kind = detect(path) if self.opts.input_format == "auto" else self.opts.input_format
        if kind not in INPUT_FORMATS[1:]:
            raise ValueError(f"--input-format must be one of {', '.join(INPUT_FORMATS)}, not {kind!r}")
        self._question_only(sim_id, [])
        if kind == "oasis":
            self.sources.append(self._trace_source(path, sim_id, path.name))
        elif kind == "mirofish":
            parser = mirofish.LineParser(sim_id=sim_id, platform=mirofish.platform_of(path, self.opts.platform),
                                         label=str(path))
            self.sources.append(LineSource(path, name=path.name, sim_id=sim_id, parser=parser,
                                           resume=self._resume(sim_id, path.name)))
        else:
            parser = jsonl.LineParser(sim_id=self.opts.sim, label=str(path))
            self.sources.append(LineSource(path, name=path.name, sim_id=sim_id, parser=parser,
                                           resume=self._resume(sim_id, path.name)))

    def _add_folder(self, path: Path, sim_id: str) -> None:
        config = path / mirofish_config.CONFIG_FILE
        logs = self._logs(path)
        found_profiles = [path / f for f in profiles.PROFILE_FILES if (path / f).is_file()]
        dbs = sorted(p for p in path.glob("*.db") if oasis.is_oasis_file(p))
        if not (config.is_file() or logs or found_profiles):
            if not dbs:
                raise FileNotFoundError(f"{path}: no MiroFish log (*/actions.jsonl) or OASIS database (*.db) inside")
            for db in dbs:  # an OASIS output folder
                try:
                    self.sources.append(self._trace_source(db, sim_id, db.name))
                except oasis.NotOasis as exc:
                    self.notes.append(f"{exc}: skipped")
            self._question_only(sim_id, [])
            return
        folder = _Folder(path, sim_id, PostIndex())
        folder.index = PostIndex(fallback=lambda plat, kind, id_: self._from_db(folder, plat, kind, id_))
        self.folders.append(folder)
        cfg = None
        if config.is_file():
            cfg = mirofish_config.read(config, question=self.opts.question)
            self.configs.append(cfg)
            platforms = sorted({mirofish.platform_of(p) for p in logs})
            self.sources.append(FileSource(config, name=config.name, sim_id=sim_id, resume=self._resume(sim_id, config.name),
                                           parse=lambda _p, c=cfg: [mirofish_config.simulation_event(
                                               c, sim_id=sim_id, platforms=platforms, source=mirofish.SOURCE)]))
            self._questioned.add(sim_id)
        else:
            self._question_only(sim_id, sorted({mirofish.platform_of(p) for p in logs}))
        for p in found_profiles:
            self.sources.append(self._profile_source(p, sim_id, p.name, cfg))
        self._discover(folder)

    def _logs(self, path: Path) -> list[Path]:
        return sorted(path.glob("*/actions.jsonl")) + sorted(path.glob("actions.jsonl"))

    def _discover(self, folder: _Folder) -> None:
        """New platform logs and databases of a MiroFish folder (a running
        simulation creates them as it starts)."""
        for db in sorted(folder.path.glob("*.db")):
            if db in folder.dbs or not oasis.is_oasis_file(db):
                continue
            folder.dbs.add(db)
            try:
                conn = oasis.connect(db)
                lookup = oasis.Lookup(conn, oasis.check(db, conn))
            except oasis.NotOasis as exc:
                self.notes.append(f"{exc}: not used")
                continue
            folder.lookups[oasis.platform_of(db, None)] = lookup
        for log in self._logs(folder.path):
            if log in folder.logs:
                continue
            folder.logs.add(log)
            name = str(log.relative_to(folder.path))
            parser = mirofish.LineParser(sim_id=folder.sim_id, platform=mirofish.platform_of(log, self.opts.platform),
                                         index=folder.index, label=str(log))
            self.sources.append(LineSource(log, name=name, sim_id=folder.sim_id, parser=parser,
                                           resume=self._resume(folder.sim_id, name)))

    def _from_db(self, folder: _Folder, platform: str, kind: str, id_: str):
        lookup = folder.lookups.get(platform)
        return lookup.index_fallback(platform)(platform, kind, id_) if lookup is not None else None

    def _question_only(self, sim_id: str, platforms: list[str]) -> None:
        """``--question`` without a config: the simulation's event from it alone."""
        if not self.opts.question or sim_id in self._questioned:
            return
        self._questioned.add(sim_id)
        cfg = mirofish_config.SimConfig(None, question=self.opts.question, question_from="--question")
        self.configs.append(cfg)
        event = mirofish_config.simulation_event(cfg, sim_id=sim_id, platforms=platforms, source="cli")
        self.sources.append(_Once(sim_id, "--question", [replace(event, derived=True)]))

    def _profile_source(self, path: Path, sim_id: str, name: str, cfg) -> FileSource:
        over = cfg.overrides if cfg is not None else None
        return FileSource(path, name=name, sim_id=sim_id, resume=self._resume(sim_id, name),
                          parse=lambda p: list(profiles.parse_file(p, sim_id=sim_id, overrides=over)))

    def _trace_source(self, path: Path, sim_id: str, name: str) -> TraceSource:
        return TraceSource(path, name=name, sim_id=sim_id, platform=self.opts.platform,
                           round_minutes=self.opts.round_minutes, resume=self._resume(sim_id, name))

    def refresh(self) -> None:
        for folder in self.folders:
            self._discover(folder)

    def ended(self) -> bool:
        """Every log said simulation_end (OASIS databases never do)."""
        logs = [s for s in self.sources if isinstance(s, LineSource)]
        others = [s for s in self.sources if isinstance(s, TraceSource)]
        return bool(logs) and not others and all(s.ended for s in logs)

    def fallback_notes(self) -> list[str]:
        out = []
        for f in self.folders:
            if f.lookups:
                out.append(f"{', '.join(sorted(d.name for d in f.dbs))}: not published (the MiroFish logs carry the "
                           f"same actions); resolved {f.index.fallback_hits} ids the logs gave without text")
        return out


class _Once:
    """A source of a few events known up front (the question from --question)."""

    kind = "once"
    ended = True

    def __init__(self, sim_id: str, name: str, items: list[Item]) -> None:
        self.sim_id, self.name, self.path, self.notes = sim_id, name, Path(name), []
        self._items: list[Item] | None = items

    def poll(self, *, complete: bool):
        items, self._items = self._items or [], None
        return Polled(items, 0, bool(items))

    def position(self) -> None:
        return None


class _Stop:
    """Ctrl-C or SIGTERM while following: finish the batch in hand, store its
    position, summarise (a signal never cuts a batch between send and store)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._old: dict[int, object] = {}

    def __enter__(self) -> "_Stop":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, lambda *_: self.event.set())
        return self

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def run_publish(settings: Settings | None, paths: list[Path], opts: Options | None = None, *,
                synthetic: Path | None = None, seed: int = 42, agents: int = 40, rounds: int = 6,
                on_error: Callable[[str], None] | None = None) -> Summary:
    opts = opts or Options()
    missing = [p for p in paths if not p.exists()]
    if missing:  # a usage error: said before any broker is asked
        raise FileNotFoundError(f"{missing[0]}: no such file or folder")
    publisher = Publisher(settings, dry_run=opts.dry_run, on_error=on_error)
    store = None
    if not opts.dry_run:
        # Fails fast, naming the broker, when Kafka is not there; creates the
        # positions topic for a deployment that predates it.
        create_topics(settings, (PUBLISHER_POSITIONS,))
        store = PositionStore(settings, publisher.producer, publisher.serde)
    positions = store.load() if store is not None and (opts.follow or opts.resume) else {}
    plan = Plan(opts, positions)
    summary = Summary(publisher.counts, dry_run=opts.dry_run, follow=opts.follow)
    if synthetic is not None:
        sim_id = opts.sim or f"{synthetic.name}-s{seed}"
        plan._sim(sim_id)
        publisher.publish(synth.generate(synthetic, sim_id=sim_id, seed=seed, agents=agents, rounds=rounds).events)
    for path in paths:
        plan.add(path)
    with _Stop() as stop:
        summary.stopped_by = _loop(plan, publisher, store, opts, stop)
    for s in plan.sources:
        summary.notes += s.notes
        if isinstance(s, LineSource) and s.partial:
            summary.notes.append(f"{s.name}: its last line has no newline yet and was left unread; a later run "
                                 "(or --follow) reads it once it is complete")
        pos = s.position()
        if pos is not None:
            summary.inputs.append({"sim": s.sim_id, "source": s.name, "kind": pos.kind, "position": pos.offset,
                                   "lines_or_rows": pos.items, "ended": pos.ended})
    summary.notes = plan.notes + summary.notes + plan.fallback_notes()
    summary.sims = plan.sims
    for cfg in plan.configs:
        summary.question, summary.question_source = cfg.question, cfg.question_from
        for k, v in cfg.used.items():
            summary.config_fields_used[k] = summary.config_fields_used.get(k, 0) + v
        summary.config_fields_unused = cfg.unused
        summary.notes += [f"{cfg.path}: could not read {u}" for u in cfg.unreadable[:20]]
    return summary


def _loop(plan: Plan, publisher: Publisher, store: PositionStore | None, opts: Options, stop: _Stop) -> str:
    """Poll every source until the input is exhausted (or, following, until
    simulation_end, the idle timeout or a signal). Positions are stored only
    after Kafka acknowledged what they cover."""
    idle_since = time.monotonic()
    final, reason = not opts.follow, "end of input"
    while True:
        progressed = False
        for src in list(plan.sources):
            polled = src.poll(complete=final)
            publisher.publish(polled.items, flush=False)
            publisher.counts.resumed += polled.resumed
            progressed |= polled.progressed
        publisher.flush()
        if store is not None:
            store.save([p for p in (s.position() for s in plan.sources) if p is not None])
        if final:
            if not progressed:
                return reason
            continue
        plan.refresh()
        now = time.monotonic()
        if progressed:
            idle_since = now
        if plan.ended():
            final, reason = True, "simulation_end"
        elif stop.event.is_set():
            return "signal"
        elif opts.idle_timeout is not None and now - idle_since >= opts.idle_timeout:
            final, reason = True, f"idle timeout ({opts.idle_timeout:g} s without new input)"
        elif not progressed:
            stop.event.wait(opts.poll_interval)
