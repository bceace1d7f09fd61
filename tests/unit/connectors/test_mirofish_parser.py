import json
from pathlib import Path

import pytest

from connectors import mirofish
from connectors.events import BadLine, OutEvent, Skipped
from tests.paths import ROOT

EXAMPLE = ROOT / "connectors" / "examples" / "town_hall"


def write(tmp_path: Path, lines: list, platform: str = "twitter") -> Path:
    path = tmp_path / "sim1" / platform / "actions.jsonl"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\n".join(line if isinstance(line, bytes) else json.dumps(line).encode() for line in lines) + b"\n")
    return path


def action(**kw):
    base = {"round": 1, "timestamp": "2026-03-02T08:00:05", "agent_id": 3, "agent_name": "Ana",
            "action_type": "CREATE_POST", "action_args": {"content": "hello", "post_id": 9}, "result": None, "success": True}
    base.update(kw)
    return base


def parse(path):
    return list(mirofish.parse_file(path, sim_id="s"))


def test_actions_map_to_posts_observations_markers_and_skips(tmp_path):
    path = write(tmp_path, [
        {"event_type": "round_start", "round": 1, "timestamp": "2026-03-02T08:00:00", "simulated_hour": 8},
        action(),
        action(action_type="QUOTE_POST", action_args={"quote_content": "so true", "quoted_id": 9, "original_content": "hello", "original_author_name": "Ana"}),
        action(action_type="REPOST", action_args={"post_id": 9}),
        action(action_type="CREATE_COMMENT", action_args={"content": "nice", "post_id": 9, "comment_id": 4}),
        action(action_type="LIKE_POST", action_args={"post_id": 9, "post_author_name": "Ben", "post_content": "x"}),
        action(action_type="FOLLOW", action_args={"follow_id": 2}),
        action(action_type="DO_NOTHING", action_args={}),
        {"event_type": "round_end", "round": 1, "actions_count": 7},
    ])
    items = parse(path)
    kinds = [(type(i).__name__, getattr(i, "type_name", None)) for i in items]
    assert kinds == [("OutEvent", "RoundMarker"), ("OutEvent", "Post"), ("OutEvent", "Post"), ("OutEvent", "Post"),
                     ("OutEvent", "Post"), ("OutEvent", "Observation"), ("OutEvent", "Observation"),
                     ("Skipped", None), ("OutEvent", "RoundMarker")]
    post = items[1].record
    assert post["agent_id"] == "twitter-3" and post["platform"] == "twitter" and post["post_id"] == "9"
    assert post["ts"] == 1772438405000  # 2026-03-02T08:00:05Z: no zone means UTC
    assert items[2].record["content"].startswith("so true") and items[2].record["parent_id"] == "9"
    # older versions give only the id: the text comes from post 9, published earlier in the run
    assert items[3].record["content"] == "RT Ana: hello" and items[3].record["parent_id"] == "9"
    assert items[4].record["parent_id"] == "9" and items[4].record["post_id"] == "4"
    assert items[5].record["content"] == 'I liked a post by Ben: "x"'
    # follow_id is OASIS's follow record, not the user followed: no name is invented
    assert items[6].record["content"] == "I followed a user the log does not name"
    assert json.loads(items[6].record["args_json"]) == {"follow_id": 2}
    # a round_end without a timestamp takes the last action's event time
    assert items[-1].record["ts"] == post["ts"] and items[-1].record["actions_count"] == 7
    assert items[0].key == b"s" and post and items[1].key == b"s/twitter-3"


@pytest.mark.parametrize("line,field,reason", [
    (b'{"round": 1, "agent_id": 3, "action_type": "CREATE_POST", "action_args": {"content": "x', None, "invalid JSON"),
    (b'[1, 2]', None, "expected a JSON object"),
    (b'\xff\xfe{}', None, "invalid"),
    (action(round="five"), "round", "expected int"),
    (action(round=-1), "round", "out of range"),
    (action(agent_id=None), "agent_id", "missing required field"),
    (action(agent_id=True), "agent_id", "expected int or str"),
    (action(timestamp="yesterday"), "timestamp", "not an ISO 8601"),
    (action(action_args={"post_id": 1}), "action_args.content", "without content"),
    (action(action_args=[1]), "action_args", "expected an object"),
    (action(action_type="REPOST", action_args={}), "action_args.post_id", "REPOST without"),
    (action(action_type="QUOTE_POST", action_args={}), "action_args.quoted_id", "QUOTE_POST without"),
    (action(platform=""), "platform", "expected a platform name"),
    ({"event_type": "round_middle", "round": 1}, "event_type", "unknown event_type"),
    ({"event_type": "round_end", "timestamp": "2026-03-02T08:00:00"}, "round", "missing required field"),
])
def test_bad_lines_name_file_line_and_field(tmp_path, line, field, reason):
    path = write(tmp_path, [action(), line, action(agent_id=4)])
    items = parse(path)
    assert [type(i) for i in items] == [OutEvent, BadLine, OutEvent]  # publishing goes on
    bad = items[1]
    assert bad.source_ref == f"{path}:2"
    assert bad.field == field
    assert reason in bad.reason
    assert bad.raw.strip() == (line if isinstance(line, bytes) else json.dumps(line).encode())
    assert f"{path}:2:" in bad.message()


def test_ids_are_deterministic_and_exact_duplicates_are_one_event(tmp_path):
    path = write(tmp_path, [action(), action(), action(agent_id=5)])
    first, second = parse(path), parse(path)
    assert [type(i) for i in first] == [OutEvent, Skipped, OutEvent]
    assert first[1].reason == "duplicate line"
    ids = [i.record["event_id"] for i in first if isinstance(i, OutEvent)]
    assert ids == [i.record["event_id"] for i in second if isinstance(i, OutEvent)]
    assert len(set(ids)) == 2
    # the same line in another file of the run is the same event
    other = parse(write(tmp_path / "again", [action()]))
    assert other[0].record["event_id"] == ids[0]


def test_agent_ids_are_per_platform(tmp_path):
    tw = parse(write(tmp_path, [action()], "twitter"))[0]
    rd = parse(write(tmp_path / "r", [action()], "reddit"))[0]
    assert tw.record["agent_id"] == "twitter-3" and rd.record["agent_id"] == "reddit-3"
    assert tw.record["event_id"] != rd.record["event_id"]


def test_bundled_example_parses_with_its_deliberate_bad_lines():
    items = []
    for platform in ("twitter", "reddit"):
        items += parse(EXAMPLE / platform / "actions.jsonl")
    bad = [i for i in items if isinstance(i, BadLine)]
    assert len(bad) == 3
    assert sum(isinstance(i, Skipped) for i in items) > 0
    assert sum(isinstance(i, OutEvent) and i.type_name == "Post" for i in items) >= 50


def test_id_only_quotes_and_reposts_name_what_they_refer_to(tmp_path):
    # Real MiroFish runs log QUOTE_POST as {quoted_id, new_post_id} only.
    path = write(tmp_path, [
        action(agent_id=1, agent_name="Ana", action_args={"content": "Carbon tax now", "post_id": 7}),
        action(agent_id=2, action_type="QUOTE_POST", action_args={"quoted_id": 7, "new_post_id": 8}),
        action(agent_id=3, action_type="QUOTE_POST", action_args={"quoted_id": 99, "new_post_id": 10}),
        action(agent_id=4, action_type="REPOST", action_args={"new_post_id": 11, "reposted_id": 8}),
        action(agent_id=5, action_type="QUOTE_POST", action_args={"quoted_id": 11, "new_post_id": 12,
                                                                 "quote_content": "agreed"}),
        action(agent_id=6, action_type="REPOST", action_args={"new_post_id": 13}),
        action(agent_id=7, action_type="LIKE_POST", action_args={"post_id": 7, "like_id": 1}),
    ])
    items = parse(path)
    assert all(isinstance(i, OutEvent) for i in items)  # nothing dead-lettered
    quote, unknown, repost, quote2, bare, like = (i.record for i in items[1:])
    assert quote["content"] == 'Quote of post 7 by Ana\n> Ana: Carbon tax now' and quote["parent_id"] == "7"
    assert quote["post_id"] == "8"
    assert unknown["content"] == "Quote of post 99 (text not in the log)" and unknown["parent_id"] == "99"
    # the repost names the quoted post (8) and its words, never its own id (11)
    assert repost["parent_id"] == "8" and repost["content"].startswith("RT ") and "Quote of post 7" in repost["content"]
    assert quote2["content"].startswith("agreed\n> ") and "Quote of post 7" in quote2["content"]
    assert bare["parent_id"] is None and "does not name" in bare["content"] and "13" in bare["content"]
    assert like["content"] == 'I liked a post by Ana: "Carbon tax now"' and like["target_id"] == "7"


def test_a_lines_platform_field_decides_its_platform(tmp_path):
    # Older loggers write one file for both platforms, each line naming its own.
    path = tmp_path / "sim1" / "actions.jsonl"
    path.parent.mkdir()
    lines = [action(platform="twitter"), action(platform="reddit"),
             {"event_type": "simulation_end", "platform": "reddit", "total_rounds": 1}]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    tw, rd, end = parse(path)
    assert tw.record["agent_id"] == "twitter-3" and rd.record["agent_id"] == "reddit-3"
    assert tw.record["event_id"] != rd.record["event_id"]
    assert end.record["platform"] == "reddit"


def test_unknown_action_types_are_published_and_flagged(tmp_path):
    path = write(tmp_path, [action(action_type="TELEPORT", action_args={"to": "mars"})])
    (item,) = parse(path)
    assert item.type_name == "Observation" and item.unknown_action == "TELEPORT"
    assert "teleport" in item.record["content"] and json.loads(item.record["args_json"]) == {"to": "mars"}
    known = parse(write(tmp_path / "k", [action(action_type="LIKE_POST", action_args={"post_id": 1})]))[0]
    assert known.unknown_action is None


def test_values_of_the_wrong_type_are_bad_lines_not_crashes(tmp_path):
    # Found by fuzzing: a list where a name is expected.
    path = write(tmp_path, [{"event_type": ["round_end"], "round": 1}, action(action_type=["LIKE_POST"])])
    items = parse(path)
    assert [type(i) for i in items] == [BadLine, BadLine]
    assert items[0].field == "event_type" and items[1].field == "action_type"
