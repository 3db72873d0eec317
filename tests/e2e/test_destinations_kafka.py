"""The kafka destination through the real server against a real Kafka 4.4 broker (KRaft, one
node, tests/kafka/kafka_cluster.py; ctest labels `e2e` and `kafka`): events posted to the
Tracking API are produced to the configured topic keyed by the user and arrive in order per key;
a record the broker refuses as too large is dead-lettered with the broker's reason; with the
broker down the events are retried, and delivered once it is back.

Topics are made through the Admin API by kafka_smoke --create-only (the broker does not create
topics on its own, as a user's cluster usually does not); records are read back with kcat."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "kafka"))
from kafka_cluster import kafka_single  # noqa: E402,F401 (fixture)

from conftest import Server, ServerFactory, new_id  # noqa: E402
from webhook_sink import wait_for  # noqa: E402

SMOKE_BIN = os.environ.get("SY_KAFKA_SMOKE_BIN", "")


@dataclass
class KafkaServer(Server):
    destinations: list[dict[str, Any]] = field(default_factory=list)

    def write_config(self) -> None:
        super().write_config()
        with open(self.config_path, "a") as f:
            f.write("destinations: " + json.dumps(self.destinations) + "\n")

    def dlq_list(self, destination: str) -> list[dict]:
        r = subprocess.run([self.bin, "dlq", "list", "--destination", destination, "--config",
                            str(self.config_path)], capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr.decode()
        return [json.loads(line) for line in r.stdout.decode().splitlines() if line.strip()]

    def metric(self, name: str, destination: str) -> float:
        return self.metrics().get_value(name, destination=destination)


@pytest.fixture
def make_server(tmp_path):
    make = ServerFactory(tmp_path, KafkaServer, "kafka")
    yield lambda destinations: make(destinations=destinations)
    make.kill_all()


def create_topic(bootstrap: str, *config: str, partitions: int = 3) -> str:
    assert SMOKE_BIN and Path(SMOKE_BIN).exists(), "SY_KAFKA_SMOKE_BIN (set by ctest)"
    topic = f"sy-dest-{uuid.uuid4().hex[:8]}"
    args = [SMOKE_BIN, "--create-only", "--brokers", bootstrap, "--topic", topic,
            "--partitions", str(partitions), "--timeout-ms", "30000"]
    for c in config:
        args += ["--topic-config", c]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return topic


def read_topic(bootstrap: str, topic: str) -> list[dict]:
    """Every record of the topic: key, partition, offset and the value parsed as JSON."""
    r = subprocess.run(["kcat", "-C", "-b", bootstrap, "-t", topic, "-e", "-q", "-J"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = []
    for line in r.stdout.splitlines():
        if line.strip():
            rec = json.loads(line)
            rec["value"] = json.loads(rec["payload"])
            out.append(rec)
    return out


def kafka_dest(bootstrap: str, topic: str, ordering: str = "none", **settings: Any) -> dict:
    return {"name": "k", "type": "kafka", "ordering": ordering,
            "batch": {"max_events": 50, "max_wait": "50ms"},
            "settings": {"brokers": bootstrap, "topic": topic, "message_timeout": "3s",
                         **settings}}


def send(server: Server, batch: list[dict]) -> list[str]:
    for m in batch:
        m.setdefault("messageId", new_id())
    assert server.post("/v1/batch", {"batch": batch}).status == 200
    return [m["messageId"] for m in batch]


def test_events_arrive_keyed_by_user_in_order_per_key(kafka_single, make_server):
    bootstrap = kafka_single.bootstrap
    topic = create_topic(bootstrap)
    server = make_server([kafka_dest(bootstrap, topic, compression="lz4")])
    sent = []
    for round_ in range(4):  # several batches, so order holds across produce rounds too
        batch = []
        for i in range(30):
            user = f"user-{i % 5}"
            batch.append({"type": "track", "anonymousId": user, "event": "Step",
                          "properties": {"n": round_ * 30 + i}})
        batch.append({"type": "identify", "userId": f"only-user-{round_}",
                      "traits": {"plan": "pro"}})
        sent += send(server, batch)
    wait_for(lambda: server.metric("switchyard_delivery_delivered_total", "k") == len(sent),
             what="every event delivered", timeout=60)
    records = read_topic(bootstrap, topic)
    assert sorted(r["value"]["messageId"] for r in records) == sorted(sent)  # each exactly once
    by_key: dict[str, list[dict]] = {}
    for r in sorted(records, key=lambda r: (r["partition"], r["offset"])):
        by_key.setdefault(r["key"], []).append(r)
    for key, recs in by_key.items():
        assert len({r["partition"] for r in recs}) == 1, key  # one partition per user
    for i in range(5):
        ns = [r["value"]["properties"]["n"] for r in by_key[f"user-{i}"]]
        assert ns == sorted(ns) and len(ns) == 24, (i, ns)
    # No anonymousId: the key is the userId; the value is the Segment message as stored.
    only = by_key["only-user-2"][0]["value"]
    assert only["type"] == "identify" and only["traits"] == {"plan": "pro"}
    assert len({r["partition"] for r in records}) > 1  # users spread over the partitions


def test_a_record_the_broker_refuses_as_too_large_is_dead_lettered(kafka_single, make_server):
    bootstrap = kafka_single.bootstrap
    topic = create_topic(bootstrap, "max.message.bytes=1500", partitions=1)
    server = make_server([kafka_dest(bootstrap, topic)])
    small, big, after = send(server, [
        {"type": "track", "userId": "u1", "event": "Small"},
        {"type": "track", "userId": "u1", "event": "Big", "properties": {"blob": "x" * 4000}},
        {"type": "track", "userId": "u2", "event": "After"},
    ])
    wait_for(lambda: server.metric("switchyard_delivery_dead_lettered_total", "k") == 1 and
             server.metric("switchyard_delivery_delivered_total", "k") == 2,
             what="2 delivered, the big one dead-lettered", timeout=60)
    [letter] = server.dlq_list("k")
    assert letter["event"]["messageId"] == big
    assert letter["reason"] == "kafka: Broker: Message size too large"
    got = [r["value"]["messageId"] for r in read_topic(bootstrap, topic)]
    assert sorted(got) == sorted([small, after])
    assert server.metric("switchyard_delivery_retried_total", "k") == 0


def test_broker_down_is_retried_then_delivered_when_it_is_back(kafka_single, make_server):
    bootstrap = kafka_single.bootstrap
    topic = create_topic(bootstrap, partitions=1)
    # per_user: a user's event waiting for its retry holds back the user's later ones, so the
    # order survives the outage too (with `none` each event retries on its own schedule).
    server = make_server([kafka_dest(bootstrap, topic, ordering="per_user")])
    first = send(server, [{"type": "track", "userId": "u1", "event": "Before"}])
    wait_for(lambda: server.metric("switchyard_delivery_delivered_total", "k") == 1,
             what="the first event delivered")
    node = kafka_single.nodes[0]
    kafka_single.kill_node(node)
    during = send(server, [{"type": "track", "userId": "u1", "event": f"During {i}"}
                           for i in range(5)])
    wait_for(lambda: server.metric("switchyard_delivery_retried_total", "k") >= 2,
             what="the events retried while the broker is down", timeout=60)
    assert server.metric("switchyard_delivery_delivered_total", "k") == 1
    kafka_single.start_node(node)
    kafka_single.wait_ready()
    wait_for(lambda: server.metric("switchyard_delivery_delivered_total", "k") == 6,
             what="delivered once the broker is back", timeout=90)
    assert server.metric("switchyard_delivery_dead_lettered_total", "k") == 0
    got = [r["value"]["messageId"] for r in read_topic(bootstrap, topic)]
    assert got == first + during  # one partition, the user's order, no duplicate
