import pytest

from streams import checkpoints as ck


def record(version=ck.FORMAT_VERSION):
    return {"event_id": "ckpt-1", "format_version": version, "sim_id": "s", "round": 3, "ts": 1,
            "group_offsets": [{"group": "murmur-all", "topic": "sim.posts.v1", "partition": 0, "offset": 42}],
            "changelog_offsets": [{"table": "reflection-state", "topic": "murmur-all-reflection-state-changelog",
                                   "partition": 0, "offset": 7}], "note": ""}


def test_round_trip_is_zstd_compressed_avro():
    data = ck.encode(record())
    assert data[:4] == b"\x28\xb5\x2f\xfd"  # zstd frame
    assert ck.decode(data) == record()


def test_unknown_format_version_is_refused_with_a_clear_message():
    with pytest.raises(ck.CheckpointError, match="format version 99; this Murmur reads version 1"):
        ck.decode(ck.encode(record(99)))
    with pytest.raises(ck.CheckpointError, match="not a zstd-compressed checkpoint"):
        ck.decode(b"garbage")
