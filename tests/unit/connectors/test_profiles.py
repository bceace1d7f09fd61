import json

from connectors import profiles
from connectors.events import BadLine, OutEvent
from connectors.publish_cli import Options, Plan
from deploy.pipeline import EXAMPLE
from streams.serde import AvroSerde


def test_example_profiles_become_valid_personas():
    items = list(profiles.parse_file(EXAMPLE / "twitter_profiles.csv", sim_id="s"))
    items += list(profiles.parse_file(EXAMPLE / "reddit_profiles.json", sim_id="s"))
    assert len(items) == 16 and all(isinstance(i, OutEvent) for i in items)
    for i in items:
        AvroSerde().encode("Persona", i.record, check=True)
    by = {i.record["agent_id"]: i.record for i in items}
    assert by["twitter-4"]["archetype"] == "media" and by["twitter-4"]["credibility"] == 0.8
    assert by["twitter-5"]["archetype"] == "expert" and by["reddit-3"]["archetype"] == "expert"
    assert by["reddit-0"]["extraversion"] == 0.7 and by["reddit-1"]["conscientiousness"] == 0.65
    assert by["twitter-0"]["archetype"] == "normal" and by["twitter-0"]["credibility"] == 0.4


def test_profiles_are_published_before_actions():
    plan = Plan(Options(), {})
    plan.add(EXAMPLE)
    files = [s.name for s in plan.sources]
    assert files == ["twitter_profiles.csv", "reddit_profiles.json", "reddit/actions.jsonl", "twitter/actions.jsonl"]


def test_bad_profiles(tmp_path):
    csv_path = tmp_path / "twitter_profiles.csv"
    csv_path.write_text("user_id,name\n,nobody\n7,ok\n")
    items = list(profiles.parse_file(csv_path, sim_id="s"))
    assert isinstance(items[0], BadLine) and items[0].field == "user_id" and items[0].source_ref.endswith(":2")
    assert isinstance(items[1], OutEvent)
    js = tmp_path / "reddit_profiles.json"
    js.write_text(json.dumps([{"realname": "a"}, 5]))
    items = list(profiles.parse_file(js, sim_id="s"))
    assert isinstance(items[0], OutEvent) and isinstance(items[1], BadLine) and "[1]" in items[1].source_ref
    js.write_text("{not json")
    assert isinstance(next(profiles.parse_file(js, sim_id="s")), BadLine)
