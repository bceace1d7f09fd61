import json

from connectors import jsonl
from connectors.events import BadLine, OutEvent


def write(tmp_path, lines):
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(l if isinstance(l, str) else json.dumps(l) for l in lines) + "\n")
    return path


POST = {"type": "Post", "sim_id": "s", "round": 2, "ts": "2026-01-01T00:00:00Z", "agent_id": "a1",
        "action": "CREATE_POST", "content": "hi"}


def test_typed_lines_become_events_with_defaults_and_derived_ids(tmp_path):
    marker = {"type": "RoundMarker", "sim_id": "s", "round": 2, "ts": 7, "kind": "round_end", "agent_id": "a1"}
    path = write(tmp_path, [POST, marker])
    items = list(jsonl.parse_file(path))
    assert isinstance(items[0], OutEvent) and items[0].record["ts"] == 1767225600000
    assert items[0].record["event_id"] and items[0].record["platform"] == ""
    assert items[0].key == b"s/a1"
    # agent_id is not a RoundMarker field: named
    assert isinstance(items[1], BadLine) and items[1].field == "agent_id"
    assert [i.record["event_id"] for i in jsonl.parse_file(path) if isinstance(i, OutEvent)] == [items[0].record["event_id"]]


def test_tail_json_output_can_be_published_again(tmp_path):
    line = {**POST, "event_id": "e1", "ts": 5, "_topic": "sim.posts.v1", "_partition": 0, "_offset": 3}
    (item,) = jsonl.parse_file(write(tmp_path, [line]))
    assert item.record["event_id"] == "e1" and "_topic" not in item.record


def test_bad_lines(tmp_path):
    lines = [
        "{nope",
        {**POST, "type": "Verdict"},
        {**POST, "type": None},
        {k: v for k, v in POST.items() if k != "content"},
        {**POST, "round": "x"},
        {**POST, "ts": "not a time"},
        {**POST, "colour": "red"},
    ]
    items = list(jsonl.parse_file(write(tmp_path, lines)))
    assert all(isinstance(i, BadLine) for i in items)
    assert [i.field for i in items] == [None, "type", "type", "content", "round", "ts", "colour"]
    assert [i.source_ref.rsplit(":", 1)[1] for i in items] == [str(n) for n in range(1, 8)]
