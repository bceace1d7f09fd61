"""Inputs as they grow: a log file read line by line, an OASIS database read
row by row, a profile or config file read whole.

Every source is polled: it returns the items completed since the last poll
and its position after them. A line without its newline is not complete: it
waits for the next poll (a simulation is writing it) and is read as a line
only when the input is known to be complete. A source given a stored
position from an earlier run parses from the beginning again, so what later
lines refer to (posts for id-only quotes, the open round) is rebuilt the same
way, but does not return the items up to that position: they were published
(``resumed`` counts them).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from connectors.events import Item, OutEvent
from connectors.oasis import TraceReader
from connectors.positions import Position, file_digest, prefix_digest

READ_CHUNK = 4 << 20
POLL_ITEMS = 20_000  # per poll, so a large input is published (and its position stored) in steps


@dataclass
class Polled:
    items: list[Item] = field(default_factory=list)
    resumed: int = 0  # inputs published by an earlier run, not returned again
    progressed: bool = False  # read anything at all (items, resumed or blank lines)


class Source(Protocol):
    sim_id: str
    name: str  # the key of its position: the input relative to the simulation folder
    path: Path
    notes: list[str]

    def poll(self, *, complete: bool) -> Polled: ...
    def position(self) -> Position: ...
    @property
    def ended(self) -> bool: ...


def _counted(item: Item) -> int:
    return 0 if isinstance(item, OutEvent) and item.derived else 1


def _valid_resume(resume: Position | None, kind: str, digest_now: Callable[[int], str]) -> int:
    if resume is None or resume.kind != kind or resume.offset <= 0:
        return 0
    return resume.offset if digest_now(resume.offset) == resume.digest else -1


class LineSource:
    """A JSONL log (MiroFish actions.jsonl or Murmur's own JSONL)."""

    kind = "lines"

    def __init__(self, path: Path, *, name: str, sim_id: str, parser, resume: Position | None = None) -> None:
        self.path, self.name, self.sim_id = path, name, sim_id
        self.parser = parser
        self.offset = 0  # bytes of complete lines read
        self.lineno = 0
        self.items = 0
        self.notes: list[str] = []
        self.partial = False  # an unterminated last line is waiting
        at = _valid_resume(resume, self.kind, lambda n: prefix_digest(path, n) if _size(path) >= n else "")
        if at < 0:
            self.notes.append(f"{name}: not the input the stored position was taken on (replaced or truncated): "
                              "read from its start")
        self.resume_at = max(at, 0)

    @property
    def ended(self) -> bool:
        started = getattr(self.parser, "started", set())
        return bool(self.parser.ended) and started <= self.parser.ended

    def position(self) -> Position:
        return Position(self.sim_id, self.name, self.kind, self.offset, prefix_digest(self.path, self.offset),
                        self.lineno, self.ended)

    def poll(self, *, complete: bool) -> Polled:
        out = Polled()
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return out
        if size < self.offset:
            self.notes.append(f"{self.name}: shrank below what was read ({size} < {self.offset} bytes): "
                              "new content is not read; publish it under a new simulation id")
            self.offset = size  # never re-read a file that was rewritten under us
            return out
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            buf = b""
            while len(out.items) < POLL_ITEMS:
                chunk = fh.read(READ_CHUNK)
                buf += chunk
                cut = buf.rfind(b"\n")
                lines = buf[:cut + 1].split(b"\n")[:-1] if cut >= 0 else []
                buf = buf[cut + 1:] if cut >= 0 else buf
                for raw in lines:
                    self._take(raw, len(raw) + 1, out)
                if not chunk:
                    break
            at_eof = not fh.read(1)
        self.partial = bool(buf.strip()) and at_eof
        if self.partial and complete and _parses(buf):
            # The input is complete and its last line lacks only the newline.
            self._take(buf, len(buf), out)
            self.partial = False
        return out

    def _take(self, raw: bytes, length: int, out: Polled) -> None:
        self.lineno += 1
        self.offset += length
        out.progressed = True
        item = self.parser.line(raw, self.lineno)
        if item is None:
            return
        self.items += 1
        if self.offset <= self.resume_at:
            out.resumed += _counted(item)
        else:
            out.items.append(item)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def _parses(raw: bytes) -> bool:
    try:
        json.loads(raw)
        return True
    except ValueError:
        return False


class TraceSource:
    """An OASIS database's trace table."""

    kind = "sqlite"

    def __init__(self, path: Path, *, name: str, sim_id: str, platform: str | None, round_minutes: int,
                 resume: Position | None = None) -> None:
        self.path, self.name, self.sim_id = path, name, sim_id
        self.reader = TraceReader(path, sim_id=sim_id, platform=platform, round_minutes=round_minutes)
        self.offset = 0  # last rowid read
        self.items = 0
        self.notes: list[str] = []
        self._finished_at: tuple[int | None, int] | None = None
        at = _valid_resume(resume, self.kind, lambda _n: self._digest())
        if at < 0:
            self.notes.append(f"{name}: not the database the stored position was taken on: read from its start")
        self.resume_at = max(at, 0)

    ended = False  # OASIS writes no end-of-simulation row: a follower stops at its idle timeout

    def _digest(self) -> str:
        first = self.reader.rows(0, 1)
        return hashlib.sha256(json.dumps(first, default=str).encode()).hexdigest()[:32] if first else ""

    def position(self) -> Position:
        return Position(self.sim_id, self.name, self.kind, self.offset, self._digest(), self.items)

    def poll(self, *, complete: bool) -> Polled:
        out = Polled()
        rows = self.reader.rows(self.offset, POLL_ITEMS)
        for rowid, user_id, created_at, action, info in rows:
            items = self.reader.row(rowid, user_id, created_at, action, info)
            self.offset = rowid
            self.items += 1
            out.progressed = True
            if rowid <= self.resume_at:
                out.resumed += sum(_counted(i) for i in items)
            else:
                out.items += items
        state = (self.reader.round, self.reader.round_last_ts)
        if complete and not rows and self.offset == 0 and not self._finished_at:
            self.notes.append(f"{self.name}: its trace table is empty (no actions recorded yet)")
            self._finished_at = state
        if complete and not rows and self._finished_at != state:
            # The input ended: close its open round (again only if it moved).
            out.items += self.reader.finish()
            self._finished_at = state
        return out


class FileSource:
    """A file read whole (profiles, a simulation config): published once,
    again only if its content changed."""

    kind = "file"

    def __init__(self, path: Path, *, name: str, sim_id: str, parse: Callable[[Path], list[Item]],
                 resume: Position | None = None) -> None:
        self.path, self.name, self.sim_id = path, name, sim_id
        self.parse = parse
        self.notes: list[str] = []
        self.digest = ""
        self.items = 0
        self._resume = resume

    ended = True

    def position(self) -> Position:
        size = self.path.stat().st_size if self.digest else 0
        return Position(self.sim_id, self.name, self.kind, size, self.digest, self.items, True)

    def poll(self, *, complete: bool) -> Polled:
        out = Polled()
        if not self.path.is_file():
            return out
        digest = file_digest(self.path)
        if digest == self.digest:
            return out
        items = self.parse(self.path)
        self.digest, self.items, out.progressed = digest, len(items), True
        if self._resume is not None and self._resume.digest == digest:
            out.resumed = sum(_counted(i) for i in items)
        else:
            out.items = items
        return out
