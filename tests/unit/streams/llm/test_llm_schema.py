"""Answer validation, Retry-After parsing and backoff."""

import email.utils
import time

from streams.llm.client import parse_reply
from streams.llm.prompts import (
    MEMORY_SCHEMA,
    IMPORTANCE_SCHEMA,
    REFLECTION_SCHEMA,
    STANCE_SCHEMA,
    reflection_prompt,
    importance_prompt,
)
import jsonschema

from streams.llm.schema import example_for, validate
from streams.llm.transport import AttemptFailed, HttpCaller, parse_retry_after
from streams.settings import LlmSettings


def test_validator_accepts_and_rejects():
    assert validate(IMPORTANCE_SCHEMA, {"importance": 7}) == []
    assert validate(IMPORTANCE_SCHEMA, {"importance": 7.0}) == []
    assert validate(IMPORTANCE_SCHEMA, {"importance": 11})
    assert validate(IMPORTANCE_SCHEMA, {"importance": "7"})
    assert validate(IMPORTANCE_SCHEMA, {"importance": True})
    assert validate(IMPORTANCE_SCHEMA, {})
    assert validate(IMPORTANCE_SCHEMA, {"importance": 3, "extra": 1})
    assert validate(STANCE_SCHEMA, {"valence": -0.5}) == []
    assert validate(STANCE_SCHEMA, {"valence": -1.5})
    one = {"statement": 1, "importance": 4, "valence": 0.5, "contradicts": [{"earlier": 1, "reason": "x"}]}
    assert validate(MEMORY_SCHEMA, {"statements": [one]}) == []
    assert validate(MEMORY_SCHEMA, {"statements": []})
    assert validate(MEMORY_SCHEMA, {"statements": [{**one, "contradicts": [{"earlier": 4, "reason": "x"}]}]})
    two = {"beliefs": [{"text": "I x", "sources": ["a"]}] * 2}
    assert validate(REFLECTION_SCHEMA, two)
    assert validate(REFLECTION_SCHEMA, {"beliefs": [{"text": "I x", "sources": []}] * 3})
    assert validate(REFLECTION_SCHEMA, {"beliefs": [{"text": "I x", "sources": ["a"]}] * 3}) == []


def test_example_for_is_valid_for_every_schema():
    for schema in (IMPORTANCE_SCHEMA, REFLECTION_SCHEMA, MEMORY_SCHEMA, STANCE_SCHEMA):
        assert validate(schema, example_for(schema)) == []


def _reply(content, finish="stop"):
    return {"choices": [{"message": {"content": content}, "finish_reason": finish}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 3}}


def test_parse_reply_validates_on_receipt():
    p = importance_prompt("x")
    assert parse_reply(_reply('{"importance": 4}'), p)[0] == {"importance": 4}
    assert parse_reply(_reply('```json\n{"importance": 4}\n```'), p)[0] == {"importance": 4}
    for bad, reason in (('{"importance": 40}', "invalid_schema"), ("not json", "invalid_json"),
                        ('{"importance": ', "invalid_json")):
        try:
            parse_reply(_reply(bad), p)
        except AttemptFailed as exc:
            assert exc.reason == reason and exc.usage["prompt_tokens"] == 10
        else:
            raise AssertionError(bad)
    r = reflection_prompt("a", [("m1", "x")])
    hallucinated = '{"beliefs": [{"text": "I", "sources": ["m9"]}, {"text": "I", "sources": ["m1"]},' \
                   ' {"text": "I", "sources": ["m1"]}]}'
    try:
        parse_reply(_reply(hallucinated), r)
    except AttemptFailed as exc:
        assert exc.reason == "invalid_schema" and "m9" in str(exc)
    else:
        raise AssertionError("unknown source id accepted")


def test_retry_after_parsing():
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < parse_retry_after(future) <= 31


def test_backoff_grows_with_jitter_and_honours_retry_after():
    caller = HttpCaller(LlmSettings(backoff_base_s=0.2, seed=1))
    delays = [caller.backoff(i, None) for i in range(4)]
    for i, d in enumerate(delays):
        assert 0.1 * 2 ** i <= d <= 0.2 * 2 ** i
    assert caller.backoff(0, 3.0) == 3.0
    assert caller.backoff(0, 1e6) == caller.max_retry_after_s
    again = HttpCaller(LlmSettings(backoff_base_s=0.2, seed=1))
    assert [again.backoff(i, None) for i in range(4)] == delays  # seeded jitter


def test_validate_agrees_with_jsonschema():
    # validate() runs compiled schemas (fastjsonschema); jsonschema, the
    # reference implementation, must judge our schemas' answers the same.
    cases = [
        (IMPORTANCE_SCHEMA, {"importance": 7}), (IMPORTANCE_SCHEMA, {"importance": 0}),
        (IMPORTANCE_SCHEMA, {"importance": "7"}), (IMPORTANCE_SCHEMA, {"importance": 2, "x": 1}),
        (STANCE_SCHEMA, {"valence": 0.25}), (STANCE_SCHEMA, {"valence": 2}),
        (MEMORY_SCHEMA, {"statements": [{"statement": 1, "importance": 2, "valence": 0, "contradicts": []}]}),
        (MEMORY_SCHEMA, {"statements": [{"statement": 1, "importance": 2, "valence": 0}]}),
        (REFLECTION_SCHEMA, {"beliefs": [{"text": "I x", "sources": ["a"]}] * 3}),
        (REFLECTION_SCHEMA, {"beliefs": [{"text": "I x", "sources": ["a"]}] * 6}),
        (REFLECTION_SCHEMA, {"beliefs": [{"text": "", "sources": ["a"]}] * 3}),
    ]
    for schema, data in cases:
        reference = jsonschema.validators.validator_for(schema)(schema)
        assert bool(validate(schema, data)) == (not reference.is_valid(data)), (schema, data)
    assert sum(bool(validate(schema, data)) for schema, data in cases) == 7  # both kinds of case are present
