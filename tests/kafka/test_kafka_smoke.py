"""The cluster-mode client chain on a real Kafka 4.4 broker (KRaft, one node): kafka_smoke
(kafka_chain.cc, librdkafka 2.0.2) creates a topic through the Admin API, produces with the
idempotent producer (acks=all) and waits for every delivery report, then reads everything back
in a cooperative-sticky, read_committed consumer group with a manual commit, checking order per
key and the committed offsets. ctest label `kafka`; the broker starts in ~5 s.

SY_KAFKA_THREE=1 also runs the chain on a 3-node cluster (replication factor 3,
min.insync.replicas 2), again after one broker was killed (~30 s more; for the failure suite to
come, kept out of the default run).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from kafka_cluster import kafka_single, kafka_three  # noqa: F401 (fixtures)

SMOKE_BIN = os.environ.get("SY_KAFKA_SMOKE_BIN", "")


def run_smoke(bootstrap: str, *, topic: str | None = None, replication_factor: int = 1,
              messages: int = 2000, partitions: int = 3,
              create: bool = True) -> subprocess.CompletedProcess:
    assert SMOKE_BIN and Path(SMOKE_BIN).exists(), "SY_KAFKA_SMOKE_BIN (set by ctest)"
    topic = topic or f"sy-smoke-{uuid.uuid4().hex[:8]}"
    return subprocess.run([SMOKE_BIN, "--brokers", bootstrap, "--topic", topic,
                           "--partitions", str(partitions),
                           "--replication-factor", str(replication_factor),
                           "--messages", str(messages), "--keys", "16", "--timeout-ms", "30000",
                           *([] if create else ["--no-create"])],
                          capture_output=True, text=True, timeout=120)


def test_chain_on_a_real_broker(kafka_single):
    r = run_smoke(kafka_single.bootstrap)
    assert r.returncode == 0, r.stderr + kafka_single.nodes[0].log_text()
    assert "2000 delivered, 2000 consumed in order, group protocol COOPERATIVE" in r.stdout


def test_chain_fails_when_the_topic_cannot_be_created(kafka_single):
    # Replication factor 3 on a single broker: CreateTopics must fail and the run say so — the
    # check is not a pass by default.
    r = run_smoke(kafka_single.bootstrap, replication_factor=3, messages=10)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "CreateTopics" in r.stderr and "replication factor" in r.stderr, r.stderr


@pytest.mark.skipif(os.environ.get("SY_KAFKA_THREE") != "1", reason="3-node cluster: SY_KAFKA_THREE=1")
def test_chain_on_three_brokers_survives_one_killed(kafka_three):
    # Replication factor 3, min.insync.replicas 2: with one broker killed (SIGKILL), acks=all
    # still completes on the two left, and the group resumes from its committed offsets.
    topic = f"sy-smoke3-{uuid.uuid4().hex[:8]}"
    r = run_smoke(kafka_three.bootstrap, topic=topic, replication_factor=3)
    assert r.returncode == 0, r.stderr
    kafka_three.kill_node(kafka_three.nodes[2])
    r = run_smoke(kafka_three.bootstrap, topic=topic, replication_factor=3, create=False)
    assert r.returncode == 0, r.stderr
    assert "2000 delivered, 2000 consumed in order" in r.stdout


def test_stop_leaves_no_java_behind(kafka_single):
    # Last in this file on purpose: it stops the module's broker (the fixture's own teardown
    # stop is then a no-op), so the check costs no second broker start.
    pids = [n.proc.pid for n in kafka_single.nodes]
    assert all(n.running() for n in kafka_single.nodes)
    kafka_single.stop()
    assert all(n.proc.returncode is not None for n in kafka_single.nodes)
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
