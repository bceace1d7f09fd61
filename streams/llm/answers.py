"""A model's text answer to a structured-output request, parsed and checked.

Chat replies (``client.py``) and batched completion replies
(``batching.py``) carry the answer text differently; both end here, so an
answer is accepted on the same terms whichever way it came.
"""

from __future__ import annotations

import json
from typing import Any

from .prompts import Prompt, semantic_errors
from .schema import validate
from .transport import AttemptFailed

Usage = dict[str, Any]


def strip_fences(content: str) -> str:
    # Some chat templates wrap JSON in ``` fences when decoding is not
    # constrained; accepting that costs nothing.
    text = content.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return text.strip()


def parse_answer(content: str, finish_reason: str | None, prompt: Prompt, usage: Usage) -> tuple[dict[str, Any], Usage]:
    """(validated data, usage), or AttemptFailed (a retry may do better)."""
    try:
        data = json.loads(strip_fences(content))
    except json.JSONDecodeError as exc:
        # finish_reason "length" means max_tokens cut the JSON short.
        why = "truncated" if finish_reason == "length" else "invalid"
        raise AttemptFailed("invalid_json", f"{why} JSON: {content[:120]!r}", usage=usage) from exc
    problems = validate(prompt.schema, data) + semantic_errors(prompt, data)
    if problems:
        raise AttemptFailed("invalid_schema", "; ".join(problems[:3]), usage=usage)
    return data, usage
