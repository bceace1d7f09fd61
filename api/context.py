"""An agent's memory block for its next prompt, within a token budget.

What a simulation puts in front of an agent at its next step, instead of
its whole history: its latest beliefs (reflections), the beliefs it gave up
and what replaced them (conflicts), and the memories most worth recalling
for the step (retrieval's ranking, ``api/retrieval.py``). Sections come in
that order and each is filled best first; an item that does not fit in
what is left of the budget is left out whole (never cut mid-sentence) and
counted. Tokens are estimated at 4 characters each, rounded up line by
line (no model's tokenizer runs here), so the whole block's estimate never
exceeds what was counted against the budget.

Pure: the endpoints (``api/app.py``) fetch, this decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_REFLECTIONS = 3  # beliefs are summaries: the newest few say where the agent stands
MAX_SUPERSEDED = 3

HEADINGS = {
    "reflections": "What you have come to believe:",
    "superseded": "Beliefs you changed:",
    "memories": "What you remember:",
}


@dataclass
class Block:
    text: str = ""
    used_tokens: int = 0
    reflections: list[dict] = field(default_factory=list)
    superseded: list[dict] = field(default_factory=list)
    memories: list[dict] = field(default_factory=list)
    left_out: dict[str, int] = field(default_factory=lambda: {"reflections": 0, "superseded": 0, "memories": 0})

    @property
    def rests_on(self) -> list[str]:
        """Every id the block was built from, in the order it shows them."""
        return ([r["reflection_id"] for r in self.reflections]
                + [i for c in self.superseded for i in (c["conflict_id"], c["old_memory_id"], c["new_memory_id"])]
                + [m["memory_id"] for m in self.memories])


def tokens(text: str) -> int:
    return -(-len(text) // 4)


def reflection_line(r: dict) -> str:
    return f"- {r['content']} (round {r['round']})"


def superseded_line(c: dict) -> str:
    why = f"; why: {c['reason']}" if c.get("reason") else ""
    return f"- You once held: \"{c['old_content']}\". Now: \"{c['new_content']}\" (round {c['round']}{why})"


def memory_line(m: dict) -> str:
    return f"- [round {m['round']}, importance {m['importance']}] {m['content']}"


def assemble(*, budget_tokens: int, reflections: list[dict], superseded: list[dict], memories: list[dict]) -> Block:
    """``reflections`` and ``superseded`` newest first, ``memories`` best
    first (as ranked by retrieval)."""
    block = Block()
    lines: list[str] = []
    sections = (("reflections", reflections, MAX_REFLECTIONS, reflection_line, block.reflections),
                ("superseded", superseded, MAX_SUPERSEDED, superseded_line, block.superseded),
                ("memories", memories, len(memories), memory_line, block.memories))
    for name, items, cap, render, kept in sections:
        block.left_out[name] = max(0, len(items) - cap)
        heading = HEADINGS[name]
        for item in items[:cap]:
            line = render(item)
            cost = tokens(line + "\n") + (0 if kept else tokens(heading + "\n"))
            if block.used_tokens + cost > budget_tokens:
                block.left_out[name] += 1
                continue
            if not kept:
                lines.append(heading)
            lines.append(line)
            kept.append(item)
            block.used_tokens += cost
    block.text = "\n".join(lines)
    return block
