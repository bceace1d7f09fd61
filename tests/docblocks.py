"""Fenced code blocks of the Markdown docs, for tests that run them.

A block whose info string is exactly ``bash runnable`` is a promise that it
runs as written against the live services; plain ``bash`` blocks are
examples that need a GPU, Docker or a process that runs until stopped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNNABLE = "bash runnable"
_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    info: str
    code: str

    @property
    def where(self) -> str:
        """``docs/operations.md:42``: what a failure names."""
        try:
            rel = self.path.relative_to(ROOT)
        except ValueError:
            rel = self.path
        return f"{rel}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, in order (CommonMark fences:
    a closing fence uses the opening's character, at least as many)."""
    out: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m or (m["fence"][0] == "`" and "`" in m["info"]):
            i += 1
            continue
        fence, start = m["fence"], i
        body: list[str] = []
        i += 1
        while i < len(lines):
            close = _FENCE.match(lines[i])
            if close and close["fence"][0] == fence[0] and len(close["fence"]) >= len(fence) and not close["info"].strip():
                break
            body.append(lines[i])
            i += 1
        out.append(Block(path, start + 1, m["info"].strip(), "\n".join(body) + "\n"))
        i += 1
    return out


def runnable(path: Path) -> list[Block]:
    return [b for b in blocks(path) if b.info == RUNNABLE]


def doc_files(root: Path = ROOT) -> list[Path]:
    """The docs whose runnable blocks are run: docs/*.md and README.md."""
    return sorted((root / "docs").glob("*.md")) + [root / "README.md"]
