"""Murmur on a real 3-broker KRaft cluster (``murmur services up
kafka-cluster``): topics and changelogs with 3 replicas and 2 in sync, and
the faults a cluster exists for. A broker SIGKILLed and restarted, the
leader of the busiest input partition SIGKILLed, one of two workers
SIGKILLed: each time the verifier finds every input event exactly once in
the read model (lost 0, duplicated 0) and the workers carried on by
themselves. Cassandra is the shared one of the ``live`` fixture."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import ConfigResource

from connectors.publisher import Publisher
from deploy import jvm, local
from deploy.kafka import CLUSTER, cluster_bootstrap
from deploy.pipeline import start_process, stop_process
from streams.app import group_id
from streams.kafka import admin, create_topics, make_consumer
from streams.settings import Settings
from streams.topics import AGENT_LOG, ALL, topic_name
from tests.integration.conftest import Worker, wait_for
from tests.integration.test_faults import landed, mid_stream, verify, where_missing

pytestmark = pytest.mark.integration
PROCESSORS = "agent,cassandra-sink"
AGENTS = 120  # ~1,900 memories: enough to be mid-stream at each fault, small for 2 cores


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.fixture(scope="module")
def cluster(live) -> Settings:
    """The local cluster started through deploy.local, stopped at the end;
    settings (and, for the workers' processes, environment) pointing at it."""
    log = lambda m: print(m, flush=True)  # noqa: E731
    started = time.monotonic()
    local.up(live, (CLUSTER,), log=log)  # raises (the module errors) if a node cannot start
    took = time.monotonic() - started
    try:
        pids = {n: st["pid"] for n, st in local.status(live, (CLUSTER,)).items()}
        print(f"\nkafka-cluster: healthy after {took:.1f}s; RSS " +
              ", ".join(f"{n} {_rss_mb(p):.0f} MB" for n, p in pids.items()), flush=True)
        settings = live.model_copy(update={"kafka_bootstrap": cluster_bootstrap(live.services),
                                           "topic_replication": 3})
        create_topics(settings)
        # A cluster just formed elects the new partitions' leaders over some
        # seconds; a worker started before that reads "unknown partition"
        # (one run in four here, for 30 s, on the first test).
        wait_for(lambda: all_led(settings), timeout=90, what="a leader and two in-sync replicas on every partition")
        yield settings
    finally:
        local.down(live, (CLUSTER,), log=log)


def all_led(settings: Settings) -> bool:
    names = {topic_name(spec) for spec in ALL}
    topics = admin(settings).list_topics(timeout=10).topics
    return names <= set(topics) and all(p.leader >= 0 and len(p.isrs) >= 2 for name in names
                                        for p in topics[name].partitions.values())


def env(cluster: Settings) -> dict[str, str]:
    """What a worker process needs to use the cluster, as an operator sets it."""
    return {"MURMUR_KAFKA_BOOTSTRAP": cluster.kafka_bootstrap, "MURMUR_TOPIC_REPLICATION": "3"}


def node_pid(cluster: Settings, node: int) -> int:
    pid = local.status(cluster, (f"kafka-{node}",))[f"kafka-{node}"]["pid"]
    assert pid, f"kafka-{node} is not running"
    return pid


def kill_node(cluster: Settings, node: int) -> None:
    pid = node_pid(cluster, node)
    os.kill(pid, signal.SIGKILL)
    assert jvm.wait_for(lambda: not jvm.alive(pid), 10)


class SteadyPublisher(threading.Thread):
    """Publishes events in small batches at a steady pace (the fault lands
    while records are still arriving), acks=all like every Murmur producer."""

    def __init__(self, settings: Settings, events: list, seconds: float, batches: int = 20) -> None:
        super().__init__(daemon=True)
        self.settings, self.events, self.pause, self.batches = settings, events, seconds / batches, batches
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            publisher = Publisher(self.settings)
            size = -(-len(self.events) // self.batches)
            for i in range(0, len(self.events), size):
                publisher.publish(self.events[i:i + size])
                time.sleep(self.pause)
        except BaseException as exc:  # surfaced by finish()
            self.error = exc

    def finish(self, timeout: float = 240) -> None:
        self.join(timeout)
        assert not self.is_alive(), "publishing did not finish"
        assert self.error is None, f"publishing failed: {self.error!r}"


def in_flight(m) -> int:
    """Memories of the workload not yet in the read model: > 0 at the fault
    shows it struck mid-stream."""
    return len(m.expected) - m.store.count_memories(m.sim, kinds=("post", "observation"))


def settle(m, what: str, started: float, pending: int) -> dict:
    """Wait for every memory, run the verifier, check the worker was never
    restarted (nobody helped it)."""
    wait_for(lambda: landed(m.store, m.sim, len(m.expected)), timeout=240, what=f"all memories after {what}",
             worker=m.worker)
    result = verify(m.store, m.sim, m.expected)
    print(f"\n{what}: {pending} of {len(m.expected)} memories not landed at the fault; verifier {result}, "
          f"{time.monotonic() - started:.0f}s from the fault to the last memory")
    assert (result["lost"], result["duplicated"], result["unexpected"]) == (0, 0, 0)
    assert pending > 0
    assert jvm.alive(m.worker.pid)
    return result


def replicas(cluster: Settings, topics: list[str]) -> dict[str, tuple[set[int], str]]:
    """Each topic's replica counts (over its partitions) and min.insync.replicas."""
    client = admin(cluster)
    md = client.list_topics(timeout=10).topics
    resources = [ConfigResource("topic", t) for t in topics]
    configs = {r.name: f.result() for r, f in client.describe_configs(resources).items()}
    return {t: ({len(p.replicas) for p in md[t].partitions.values()}, configs[t]["min.insync.replicas"].value)
            for t in topics}


def test_topics_and_changelogs_have_three_replicas_two_in_sync(cluster):
    with mid_stream(cluster, agents=40, **env(cluster)) as m:
        ns = m.worker.settings.namespace
        declared = sorted({topic_name(s, ns) for s in ALL})
        app = group_id(m.worker.settings, PROCESSORS)
        changelogs = [t for t in admin(cluster).list_topics(timeout=10).topics
                      if t.startswith(app) and t.endswith("-changelog")]
        assert changelogs, f"no changelog topic of {app} on the cluster"
        found = replicas(cluster, declared + changelogs)
        print(f"\n{len(declared)} declared topics and changelogs {changelogs}: "
              f"{sorted(set((tuple(r), isr) for r, isr in found.values()))} (replicas, min ISR)")
        assert {t: v for t, v in found.items() if v != ({3}, "2")} == {}
        # Every replica in sync: the cluster is whole, not merely configured.
        md = admin(cluster).list_topics(topic_name(AGENT_LOG, ns), timeout=10)
        assert all(len(p.isrs) == 3 for p in md.topics[topic_name(AGENT_LOG, ns)].partitions.values())


# In make long for the suite's 20-minute budget: a broker of the cluster dies
# mid-stream in test_leader_of_busiest_input_partition_killed below, and the
# soak's short variant restarts the single broker (coordinator and all).
@pytest.mark.long
def test_broker_killed_and_restarted_mid_stream(cluster):
    """SIGKILL the coordinator of the worker's group (it also leads some
    partitions) while events arrive; bring it back 10 s later."""
    with mid_stream(cluster, agents=AGENTS, **env(cluster)) as m:
        node = describe_group(cluster, group_id(m.worker.settings, PROCESSORS)).coordinator.id
        pub = SteadyPublisher(cluster, m.second_half, seconds=12)
        pub.start()
        time.sleep(3)
        pending, started = in_flight(m), time.monotonic()
        kill_node(cluster, node)
        time.sleep(10)
        local.up(cluster, (f"kafka-{node}",), log=lambda _m: None)
        print(f"\nkafka-{node} (group coordinator) killed; back after {time.monotonic() - started:.0f}s")
        pub.finish()
        settle(m, f"kafka-{node} SIGKILLed and restarted", started, pending)


def test_leader_of_busiest_input_partition_killed(cluster):
    """The broker leading the input partition that got most of this
    workload dies; a follower in sync takes over with every acked record."""
    topic = topic_name(AGENT_LOG, "")
    client = admin(cluster)

    def ends() -> dict[int, int]:
        parts = client.list_topics(topic, timeout=10).topics[topic].partitions
        consumer = make_consumer(cluster)
        try:
            return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
        finally:
            consumer.close()

    before = ends()
    with mid_stream(cluster, agents=AGENTS, **env(cluster)) as m:
        grown = {p: end - before.get(p, 0) for p, end in ends().items()}
        busiest = max(grown, key=grown.get)
        leader = client.list_topics(topic, timeout=10).topics[topic].partitions[busiest].leader
        pub = SteadyPublisher(cluster, m.second_half, seconds=12)
        pub.start()
        time.sleep(3)
        pending, started = in_flight(m), time.monotonic()
        kill_node(cluster, leader)

        def new_leader() -> bool:
            return client.list_topics(topic, timeout=5).topics[topic].partitions[busiest].leader not in (-1, leader)

        wait_for(new_leader, timeout=60, what=f"a new leader of {topic}[{busiest}]")
        took_over = client.list_topics(topic, timeout=5).topics[topic].partitions[busiest].leader
        print(f"\n{topic}[{busiest}] (+{grown[busiest]} records, of {sorted(grown.values())}): leader "
              f"kafka-{leader} killed, kafka-{took_over} leads after {time.monotonic() - started:.1f}s")
        time.sleep(max(0.0, 10 - (time.monotonic() - started)))
        local.up(cluster, (f"kafka-{leader}",), log=lambda _m: None)
        pub.finish()
        settle(m, f"leader kafka-{leader} of the busiest input partition SIGKILLed", started, pending)


def describe_group(cluster: Settings, gid: str):
    """The group's description. The client is kept in a variable: a future
    of an AdminClient already garbage-collected never completes."""
    client = admin(cluster)
    return client.describe_consumer_groups([gid], request_timeout=10)[gid].result()


def assignments(cluster: Settings, gid: str) -> dict[str, int]:
    """Member -> how many partitions of the input topic it holds (Faust also
    assigns standby changelog partitions; the input ones are the work)."""
    topic = topic_name(AGENT_LOG, "")
    return {mem.member_id[-8:]: sum(tp.topic == topic for tp in mem.assignment.topic_partitions)
            for mem in describe_group(cluster, gid).members}


def test_two_workers_share_partitions_and_one_survives_the_other(cluster, tmp_path):
    """A second worker of the same namespace and group, with its own state
    dir, takes half the partitions; SIGKILL the first: the second takes
    them all and the read model has every event once."""
    # Every test worker's group drops a silent member after 15 s
    # (MURMUR_FAUST_SESSION_TIMEOUT_S in conftest's start_worker).
    with mid_stream(cluster, agents=AGENTS, **env(cluster)) as m:
        first: Worker = m.worker
        gid = group_id(first.settings, PROCESSORS)
        second_name = f"{first.name}-b"
        second_env = {**first.env, "MURMUR_STATE_DIR": str(tmp_path / "state-b")}
        second_pid = start_process(cluster, second_name, first.args, env=second_env)
        try:
            wait_for(lambda: len(assignments(cluster, gid)) == 2 and all(assignments(cluster, gid).values()),
                     timeout=120, what="both workers holding partitions", worker=first)
            shared = assignments(cluster, gid)
            pub = SteadyPublisher(cluster, m.second_half, seconds=10)
            pub.start()
            time.sleep(3)
            pending, started = in_flight(m), time.monotonic()
            os.kill(first.pid, signal.SIGKILL)
            assert jvm.wait_for(lambda: not jvm.alive(first.pid), 10)
            pub.finish()
            # The survivor's own log is the witness if it stalls.
            survivor = Worker(first.settings, second_pid, second_name, first.args, second_env)
            wait_for(lambda: landed(m.store, m.sim, len(m.expected)), timeout=240,
                     what="all memories after the first worker was killed", worker=survivor,
                     explain=lambda: where_missing(first.settings, m.store, m.sim, m.expected))
            alone = assignments(cluster, gid)
            result = verify(m.store, m.sim, m.expected)
            print(f"\ntwo workers: input partitions {shared} before the kill, {alone} after; {pending} of "
                  f"{len(m.expected)} memories not landed at the kill; verifier {result}, "
                  f"{time.monotonic() - started:.0f}s from the kill to the last memory")
            assert (result["lost"], result["duplicated"], result["unexpected"]) == (0, 0, 0)
            assert pending > 0
            assert sum(shared.values()) == sum(alone.values()) == cluster.topic_partitions
            assert len(alone) == 1
            assert jvm.alive(second_pid)
        finally:
            stop_process(cluster, second_name)
