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


def _literals(template: str) -> tuple[str, str, str] | None:
    """The text before ``{system}``, between it and ``{user}``, and after."""
    text = template.replace("{{", "{").replace("}}", "}")
    head, sep1, rest = text.partition("{system}")
    middle, sep2, tail = rest.partition("{user}")
    if not (sep1 and sep2) or "{system}" in tail or "{user}" in head + middle:
        return None
    return head, middle, tail


_LITERALS = [lit for lit in map(_literals, TEMPLATES.values()) if lit is not None]


def parse(text: str) -> tuple[str, str] | None:
    """(system, user) from a prompt rendered with one of :data:`TEMPLATES`;
    the local vLLM-like server uses it to answer like a model would. The
    system message ends at the first separator after it (string searches:
    a regular expression with lazy groups cost the server a tenth of its
    CPU per prompt)."""
    for head, middle, tail in _LITERALS:
        if text.startswith(head) and text.endswith(tail):
            at = text.find(middle, len(head), len(text) - len(tail))
            if at >= 0 and at + len(middle) <= len(text) - len(tail):
                return text[len(head):at], text[at + len(middle):len(text) - len(tail)]
    return None
