"""Chat templates: a system and a user message as one completion prompt.

vLLM's ``/v1/completions`` takes a list of prompts in one request, which
is how many small classification calls become one (``batching.py``), but it
takes raw text: the chat template a chat request would have applied on the
server is applied here instead. ``settings.llm.chat_template`` names one of
:data:`TEMPLATES` (the model family's format, as in its tokenizer config) or
is a template of its own with ``{system}`` and ``{user}`` in it.

No beginning-of-text token is written: vLLM's completions endpoint adds the
tokenizer's special tokens itself, and a second one would change the prompt.
"""

from __future__ import annotations

import re

TEMPLATES = {
    # Qwen2/2.5, Yi, and other ChatML models.
    "chatml": "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n",
    # Llama 3.x instruct.
    "llama3": ("<|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|>"
               "<|start_header_id|>user<|end_header_id|>\n\n{user}<|eot_id|>"
               "<|start_header_id|>assistant<|end_header_id|>\n\n"),
}


def template_errors(template: str) -> list[str]:
    """What is wrong with a ``chat_template`` setting (empty when it is usable)."""
    if template in TEMPLATES:
        return []
    missing = [f for f in ("{system}", "{user}") if f not in template]
    if missing:
        return [f"not one of {', '.join(TEMPLATES)} and has no {' or '.join(missing)} to fill in"]
    try:
        template.format(system="", user="")
    except (KeyError, IndexError, ValueError) as exc:
        return [f"cannot be filled in: {exc!r} (write literal braces as {{{{ and }}}})"]
    return []


def render(template: str, system: str, user: str) -> str:
    return TEMPLATES.get(template, template).format(system=system, user=user)


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{system\}|\{user\})", template.replace("{{", "{").replace("}}", "}"))
    body = "".join(f"(?P<{p[1:-1]}>.*?)" if p in ("{system}", "{user}") else re.escape(p) for p in parts)
    return re.compile(body + r"\Z", re.S)


_PATTERNS = {name: _pattern(t) for name, t in TEMPLATES.items()}


def parse(text: str) -> tuple[str, str] | None:
    """(system, user) from a prompt rendered with one of :data:`TEMPLATES`;
    the local vLLM-like server uses it to answer like a model would."""
    for pattern in _PATTERNS.values():
        if m := pattern.match(text):
            return m.group("system"), m.group("user")
    return None
