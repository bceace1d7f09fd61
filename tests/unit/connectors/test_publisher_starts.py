"""The publisher's start records (streams/sim_starts.py), without a broker:
one per simulation and session, acknowledged before the first of that
simulation's events is produced, its time read before them; and the
earliest start is the one a reader goes by."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors import publisher as publisher_module
from connectors.publisher import Publisher
from connectors.synthetic import generate
from streams.settings import Settings
from streams.sim_starts import earliest, start_key

CASE = Path(__file__).resolve().parents[3] / "eval" / "cases" / "ireland_smoking_ban_2004"


class Recording:
    """A BatchProducer that keeps what was sent, and marks each flush."""

    def __init__(self) -> None:
        self.log: list[tuple] = []

    def send(self, topic, key, value, partition=None) -> None:
        self.log.append(("send", topic, key, value))

    def flush_blocking(self, timeout: float = 60.0) -> None:
        self.log.append(("flush",))


@pytest.fixture
def publisher(monkeypatch):
    monkeypatch.setattr(publisher_module, "create_topics", lambda *a, **k: {})
    pub = Publisher(Settings(), dry_run=True)
    pub.producer = Recording()
    return pub


def test_a_start_is_acknowledged_before_the_first_event_of_each_simulation(publisher):
    a = generate(CASE, sim_id="sim-a", agents=3, rounds=1).events
    b = generate(CASE, sim_id="sim-b", agents=3, rounds=1).events
    publisher.publish(a + b + a)
    log = publisher.producer.log
    starts = [i for i, e in enumerate(log) if e[0] == "send" and e[1] == "sim.starts.v1"]
    assert [log[i][2] for i in starts] == [start_key("sim-a", publisher.session), start_key("sim-b", publisher.session)]
    for i, sim in zip(starts, ("sim-a", "sim-b")):
        assert log[i + 1] == ("flush",), "acknowledged before anything else is sent"
        first_event = next(j for j, e in enumerate(log) if e[0] == "send" and e[1] != "sim.starts.v1"
                           and publisher.serde.decode(e[3])[1].get("sim_id") == sim)
        assert i < first_event
        ts = publisher.serde.decode(log[i][3])[1]["ts"]
        assert ts > 1_700_000_000_000  # milliseconds of a real clock


def test_a_new_session_writes_its_own_start():
    first, second = Publisher(None, dry_run=True), Publisher(None, dry_run=True)
    assert first.session != second.session
    assert start_key("s", first.session) != start_key("s", second.session), "a resumed publish never replaces the first"


def test_the_earliest_start_of_the_simulation_counts():
    records = [{"sim_id": "s", "ts": 30}, {"sim_id": "s", "ts": 10}, {"sim_id": "t", "ts": 5}, {"sim_id": "s", "ts": 20}]
    assert earliest(records, "s") == 10
    assert earliest(records, "u") is None


@pytest.mark.parametrize("name, value", [("replay_start_margin_s", -1), ("agent_states_unpacked", -5)])
def test_this_pass_s_settings_refuse_a_negative_value_naming_it(name, value):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=name):
        Settings(**{name: value})
