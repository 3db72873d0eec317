"""A real Apache Kafka (KRaft mode) for tests: one combined broker+controller node for fast
suites, or three (replication factor 3, min.insync.replicas 2) for failure suites. Never a mock.

The jars come from scripts/install-kafka.sh (`make test-deps`): build/tools/kafka-4.4.0/lib, or
$SY_KAFKA_HOME/lib. Each node gets free loopback ports, a fresh log dir under a temp root, and its
own log file (node-N.log). start() returns once every node logged "Kafka Server started";
stop() sends SIGTERM, then SIGKILL after a grace period, and waits, so no java survives a test.
The JVMs also get PR_SET_PDEATHSIG: when the Python process that started them dies, even by
SIGKILL, the kernel kills them too.

In pytest:     from kafka_cluster import kafka_single, kafka_three   (module-scoped fixtures)
From a shell:  python3 tests/kafka/kafka_cluster.py start DIR [--nodes 3]  → prints the bootstrap
               python3 tests/kafka/kafka_cluster.py stop DIR
"""

from __future__ import annotations

import base64
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

KAFKA_VERSION = "4.4.0"  # keep in step with tests/kafka/pom.xml and scripts/install-kafka.sh
_ROOT = Path(__file__).resolve().parents[2]
KAFKA_HOME = Path(os.environ.get("SY_KAFKA_HOME", _ROOT / "build" / "tools" / f"kafka-{KAFKA_VERSION}"))
# Small heap and serial GC: several JVMs share two cores with the rest of the suite. C1 only
# (TieredStopAtLevel=1) roughly halves start-up CPU; override for benchmarks.
JAVA_OPTS = os.environ.get("SY_KAFKA_JAVA_OPTS",
                           "-Xms128m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1").split()
READY_LINE = "Kafka Server started"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _random_cluster_id() -> str:
    # Kafka's Uuid.toString: URL-safe base64 of 16 bytes without padding, never starting with '-'.
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _die_with_parent() -> None:
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class KafkaNode:
    def __init__(self, node_id: int, root: Path):
        self.node_id = node_id
        self.dir = root / f"node-{node_id}"
        self.port = _free_port()
        self.controller_port = _free_port()
        self.proc: subprocess.Popen | None = None
        self.log_offset = 0  # where the current run's output starts in log_file

    @property
    def properties(self) -> Path:
        return self.dir / "server.properties"

    @property
    def log_file(self) -> Path:
        return self.dir / "node.log"

    def log_text(self, tail: int = 4000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class KafkaCluster:
    """`nodes` combined broker+controller KRaft nodes on 127.0.0.1, data under `root`."""

    def __init__(self, nodes: int = 1, root: str | Path | None = None):
        if nodes < 1:
            raise ValueError("nodes must be >= 1")
        self.root = Path(root or tempfile.mkdtemp(prefix="sy-kafka-"))
        self.owns_root = root is None
        self.nodes = [KafkaNode(i + 1, self.root) for i in range(nodes)]
        self.cluster_id = _random_cluster_id()
        self.die_with_parent = True

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    @property
    def replication_factor(self) -> int:
        return min(3, len(self.nodes))

    def _java(self, *args: str) -> list[str]:
        lib = KAFKA_HOME / "lib"
        if not (lib / f"kafka_2.13-{KAFKA_VERSION}.jar").exists():
            raise RuntimeError(f"Kafka {KAFKA_VERSION} not in {lib}: run scripts/install-kafka.sh"
                               " (part of `make test-deps`)")
        return ["java", *JAVA_OPTS, "-cp", f"{lib}/*", *args]

    def _write_properties(self, node: KafkaNode) -> None:
        rf = self.replication_factor
        min_isr = 2 if rf >= 3 else 1
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        props = {
            "process.roles": "broker,controller",
            "node.id": node.node_id,
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(node.dir / "data"),
            # Topics only through the Admin API, as cluster mode will create them.
            "auto.create.topics.enable": "false",
            "num.partitions": 1,
            "default.replication.factor": rf,
            "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": rf,
            "offsets.topic.num.partitions": 3,  # fewer than the default 50: faster start
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": min_isr,
            "transaction.state.log.num.partitions": 3,
            "share.coordinator.state.topic.replication.factor": rf,
            "share.coordinator.state.topic.min.isr": min_isr,
            "group.initial.rebalance.delay.ms": 0,
            # The controller fences a broker that stopped heartbeating after 6 s (default 9 s),
            # so failure tests see leaders move sooner.
            "broker.heartbeat.interval.ms": 1000,
            "broker.session.timeout.ms": 6000,
        }
        node.dir.mkdir(parents=True, exist_ok=True)
        node.properties.write_text("".join(f"{k}={v}\n" for k, v in props.items()))

    def start(self, timeout: float = 60) -> "KafkaCluster":
        # A free port can be taken between the check and the JVM's bind: then start afresh on
        # new ports (new log dirs too: a controller remembers its voters' addresses).
        for attempt in range(3):
            try:
                self._format_and_start(timeout)
                return self
            except RuntimeError:
                self.stop()
                if attempt == 2 or not any("Address already in use" in n.log_text(20000)
                                           for n in self.nodes):
                    raise
                for node in self.nodes:
                    shutil.rmtree(node.dir, ignore_errors=True)
                self.nodes = [KafkaNode(n.node_id, self.root) for n in self.nodes]
                self.cluster_id = _random_cluster_id()
        return self

    def _format_and_start(self, timeout: float) -> None:
        # Format every node's log dir with the one cluster id (in parallel: one JVM start each).
        formats = []
        for node in self.nodes:
            self._write_properties(node)
            formats.append(subprocess.Popen(
                self._java("kafka.tools.StorageTool", "format", "-t", self.cluster_id,
                           "-c", str(node.properties)),
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        for node, p in zip(self.nodes, formats):
            out, _ = p.communicate(timeout=timeout)
            if p.returncode != 0:
                raise RuntimeError(f"kafka StorageTool format of node {node.node_id} failed: "
                                   f"{out.decode(errors='replace')[-2000:]}")
        for node in self.nodes:
            self.start_node(node)
        self.wait_ready(timeout)

    def start_node(self, node: KafkaNode) -> None:
        """Starts (or restarts, after kill_node) one node with its existing log dir."""
        if node.running():
            return
        with open(node.log_file, "ab") as log:
            log.write(f"--- start at {time.time():.3f}\n".encode())
            log.flush()
            node.log_offset = log.tell()
            node.proc = subprocess.Popen(self._java("kafka.Kafka", str(node.properties)),
                                         stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL,
                                         preexec_fn=_die_with_parent if self.die_with_parent else None)

    def wait_ready(self, timeout: float = 60, nodes: list[KafkaNode] | None = None) -> None:
        deadline = time.monotonic() + timeout
        for node in nodes or self.nodes:
            while True:
                if node.proc is None or node.proc.poll() is not None:
                    raise RuntimeError(f"kafka node {node.node_id} exited: {node.log_text()}")
                text = node.log_file.read_bytes()[node.log_offset:]
                if READY_LINE.encode() in text:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"kafka node {node.node_id} not ready in {timeout} s: "
                                       f"{node.log_text()}")
                time.sleep(0.1)

    def kill_node(self, node: KafkaNode) -> None:
        """SIGKILL one node (failure tests); start_node + wait_ready bring it back."""
        if node.running():
            node.proc.kill()
            node.proc.wait(timeout=30)

    def stop(self, grace: float = 10) -> None:
        """SIGTERM every node, SIGKILL what is left after `grace` seconds; always waits."""
        for node in self.nodes:
            if node.running():
                node.proc.terminate()
        deadline = time.monotonic() + grace
        for node in self.nodes:
            if node.proc is None:
                continue
            try:
                node.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait(timeout=30)

    def destroy(self) -> None:
        self.stop()
        if self.owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "KafkaCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.destroy()


try:
    import pytest

    @pytest.fixture(scope="module")
    def kafka_single():
        cluster = KafkaCluster(nodes=1).start()
        yield cluster
        cluster.destroy()

    @pytest.fixture(scope="module")
    def kafka_three():
        cluster = KafkaCluster(nodes=3).start(timeout=120)
        yield cluster
        cluster.destroy()
except ImportError:  # used from a shell without pytest
    pass


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] not in ("start", "stop"):
        print(__doc__, file=sys.stderr)
        return 2
    root = Path(argv[2])
    if argv[1] == "start":
        nodes = int(argv[4]) if len(argv) >= 5 and argv[3] == "--nodes" else 1
        cluster = KafkaCluster(nodes=nodes, root=root)
        cluster.die_with_parent = False  # outlives this command, until `stop DIR`
        cluster.start()
        (root / "pids").write_text("".join(f"{n.proc.pid}\n" for n in cluster.nodes))
        print(cluster.bootstrap)
        return 0
    pids_file = root / "pids"
    pids = [int(p) for p in pids_file.read_text().split()] if pids_file.exists() else []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    for pid in pids:
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.1)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    pids_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
