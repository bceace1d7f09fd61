"""Batched completions, without a server: how a reply is shared out, and chat templates."""

import pytest
from hypothesis import given, strategies as st

from streams.llm import deterministic as det
from streams.llm.batching import _Pending, shares, split_reply
from streams.llm.chat_templates import TEMPLATES, parse, render, template_errors
from streams.llm.prompts import memory_prompt, stance_prompt
from streams.llm.transport import AttemptFailed
from streams.settings import LlmSettings


@given(st.integers(0, 10_000), st.lists(st.integers(0, 500), min_size=1, max_size=64))
def test_shares_add_up_and_follow_the_weights(total, weights):
    out = shares(total, weights)
    assert sum(out) == total and len(out) == len(weights) and min(out) >= 0
    if sum(weights):
        assert all(abs(o - total * w / sum(weights)) < 1 for o, w in zip(out, weights))


def pending(prompt):
    return _Pending(prompt, render("chatml", prompt.system, prompt.user), None)


def test_each_prompt_gets_its_own_answer_by_index_and_a_share_of_the_usage():
    prompts = [stance_prompt("Is tea good?", "Tea is wonderful"), stance_prompt("Is tea good?", "Tea is awful")]
    reply = {"choices": [{"index": 1, "text": '{"valence": -0.8}', "finish_reason": "stop"},
                         {"index": 0, "text": '{"valence": 0.7}', "finish_reason": "stop"}],
             "usage": {"prompt_tokens": 101, "completion_tokens": 10}}
    (a, ua), (b, ub) = split_reply(reply, [pending(p) for p in prompts])
    assert a == {"valence": 0.7} and b == {"valence": -0.8}
    assert ua["prompt_tokens"] + ub["prompt_tokens"] == 101 and ua["completion_tokens"] + ub["completion_tokens"] == 10


def test_an_invalid_or_missing_answer_fails_that_prompt_alone():
    p = memory_prompt([{"kind": "post", "content": "x", "earlier": ["y"]}])
    good = det.answer(p.task, p.inputs)
    bad = {"statements": [{**good["statements"][0], "contradicts": [{"earlier": 3, "reason": "r"}]}]}
    import json
    reply = {"choices": [{"index": 0, "text": json.dumps(good)}, {"index": 1, "text": json.dumps(bad)},
                         {"index": 2, "text": '{"statements": [', "finish_reason": "length"}], "usage": {}}
    ok, wrong, cut, missing = split_reply(reply, [pending(p)] * 4)
    assert ok[0] == good
    assert isinstance(wrong, AttemptFailed) and wrong.reason == "invalid_schema" and "earlier" in str(wrong)
    assert isinstance(cut, AttemptFailed) and cut.reason == "invalid_json" and "truncated" in str(cut)
    assert isinstance(missing, AttemptFailed) and missing.reason == "invalid_reply"


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_a_rendered_prompt_parses_back(name):
    text = render(name, "sys\nline", "Question: q\nStatement 1 (post): hi")
    assert parse(text) == ("sys\nline", "Question: q\nStatement 1 (post): hi")
    assert "{system}" not in text and text.endswith("\n")


def _by_regex(text: str):
    """The lazy-group regular expression the parser replaced: its reference."""
    import re

    for template in TEMPLATES.values():
        parts = re.split(r"(\{system\}|\{user\})", template)
        body = "".join(f"(?P<{p[1:-1]}>.*?)" if p in ("{system}", "{user}") else re.escape(p) for p in parts)
        if m := re.compile(body + r"\Z", re.S).match(text):
            return m.group("system"), m.group("user")
    return None


_PIECES = st.sampled_from(["<|im_end|>\n<|im_start|>user\n", "<|eot_id|>", "<|im_start|>assistant\n", "a", "\n",
                           "<|start_header_id|>user<|end_header_id|>\n\n", "é"])


@given(st.sampled_from(sorted(TEMPLATES)), st.lists(_PIECES, max_size=6).map("".join),
       st.lists(_PIECES, max_size=6).map("".join), st.booleans())
def test_parse_agrees_with_the_regular_expression(name, system, user, rendered):
    text = render(name, system, user) if rendered else system + user
    assert parse(text) == _by_regex(text)
    if rendered and parse(text) is not None:
        assert render(name, *parse(text)) == text


def test_a_template_of_ones_own_must_have_both_parts():
    assert template_errors("chatml") == [] and template_errors("[S]{system}[U]{user}[A]") == []
    assert "no {user}" in template_errors("{system} only")[0]
    assert template_errors("{system}{user}{other}")
    assert render("<s>{system}|{user}|", "a", "b") == "<s>a|b|"
    with pytest.raises(ValueError, match="chat_template"):
        LlmSettings(chat_template="{system} only")


def test_an_embedding_reads_as_base64_float32_or_as_json_numbers():
    import base64

    import numpy as np

    from streams.llm.embedder import _normalise_rows, _vector

    vec = [0.6, -0.8, 0.0]
    b64 = base64.b64encode(np.asarray(vec, dtype="<f4").tobytes()).decode()
    assert np.allclose(_vector(b64), vec) and np.allclose(_vector(vec), vec)
    assert _normalise_rows(np.stack([_vector([3.0, 4.0]), _vector([0.0, 0.0])])) == [[0.6, 0.8], [0.0, 0.0]]
    with pytest.raises(ValueError):
        _vector("not base64!")
