"""Fixtures for Switchyard's end-to-end suite: they drive the REAL `switchyard` binary.

Every server runs on 127.0.0.1 on a free port with a temp data_dir, and is killed at teardown.
SWITCHYARD_BIN names the binary (default: build/release/switchyard in the repo).
"""

from __future__ import annotations

import base64
import gzip as gzip_mod
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
E2E = Path(__file__).resolve().parent

WRITE_KEY = "wk_e2e_web"
WRITE_KEY_2 = "wk_e2e_backend"
SOURCE = "web"
SOURCE_2 = "backend"
# /metrics is off on the public listener unless a token is configured (docs/security.md): the
# suites scrape it there with this token.
METRICS_TOKEN = "e2e-metrics-token-0123456789"
METRICS_AUTH = {"Authorization": f"Bearer {METRICS_TOKEN}"}


def switchyard_bin() -> str:
    b = os.path.abspath(os.environ.get("SWITCHYARD_BIN") or
                        str(REPO / "build" / "release" / "switchyard"))
    if not os.access(b, os.X_OK):
        pytest.fail(f"switchyard binary not found at {b}: build it or set SWITCHYARD_BIN")
    return b


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def basic(write_key: str) -> str:
    return "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def __repr__(self) -> str:  # readable assertion failures
        return f"Response({self.status}, {self.body[:500]!r})"


_METRIC_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> dict[tuple[str, frozenset], float]:
    """Prometheus text format → {(name, frozenset(labels.items())): value}."""
    out: dict[tuple[str, frozenset], float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _METRIC_LINE.match(line)
        if not m:
            raise AssertionError(f"unparseable metrics line: {line!r}")
        labels = frozenset(_LABEL.findall(m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


class Metrics(dict):
    def get_value(self, name: str, **labels: str) -> float:
        """The sample with exactly these labels; 0 when absent (a counter never incremented)."""
        return self.get((name, frozenset(labels.items())), 0.0)

    def names(self) -> set[str]:
        return {k[0] for k in self}


@dataclass
class Server:
    """One `switchyard serve` process on a temp data_dir; restartable on the same data_dir."""

    workdir: Path
    ingest: dict[str, Any] = field(default_factory=dict)
    log: dict[str, Any] = field(default_factory=dict)
    io_threads: int = 2
    proc: subprocess.Popen | None = None
    port: int = 0
    starts: int = 0

    def __post_init__(self) -> None:
        self.bin = switchyard_bin()
        self.data_dir = self.workdir / "data"
        self.config_path = self.workdir / "switchyard.yaml"
        self.stderr_path = self.workdir / "server.log"

    # ---- lifecycle -------------------------------------------------------------------------

    def write_config(self) -> None:
        lines = [
            "version: 1",
            f"listen: 127.0.0.1:{self.port}",
            f"data_dir: {self.data_dir}",
            f"io_threads: {self.io_threads}",
            "log_level: warn",
            "sources:",
            f"  - name: {SOURCE}",
            f"    write_key: {WRITE_KEY}",
            f"  - name: {SOURCE_2}",
            f"    write_key: {WRITE_KEY_2}",
        ]
        lines += ["metrics:", f"  token: {METRICS_TOKEN}"]
        log = {"fsync": "always", **self.log}
        lines.append("log:")
        lines += [f"  {k}: {v}" for k, v in log.items()]
        if self.ingest:
            lines.append("ingest:")
            for k, v in self.ingest.items():
                lines.append(f"  {k}: {json.dumps(v) if isinstance(v, list) else v}")
        self.config_path.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 15.0) -> None:
        assert self.proc is None, "already running"
        for attempt in range(3):  # a free port can be taken by someone else between checks
            # A restart keeps its port (clients reconnect to the same address), unless taken.
            if attempt > 0 or not self.port:
                self.port = free_port()
            self.write_config()
            err = open(self.stderr_path, "ab")
            self.proc = subprocess.Popen(
                [self.bin, "serve", "--config", str(self.config_path)],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err, cwd=self.workdir)
            err.close()
            self.starts += 1
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    if self.get("/readyz", timeout=1).status == 200:
                        return
                except OSError:
                    pass
                time.sleep(0.02)
            if self.proc.poll() is None:
                self.kill()
                raise AssertionError(f"server not ready within {timeout}s:\n{self.log_text()}")
            rc = self.proc.returncode
            self.proc = None
            if "address" not in self.log_text().lower():  # not a port clash: a real failure
                raise AssertionError(f"server exited rc={rc} at start:\n{self.log_text()}")
        raise AssertionError(f"server could not start:\n{self.log_text()}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait; the server must exit 0 by itself."""
        if self.proc is None:
            return 0
        p, self.proc = self.proc, None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                raise AssertionError(f"server ignored SIGTERM for {timeout}s:\n{self.log_text()}")
        assert p.returncode == 0, f"server exited rc={p.returncode}:\n{self.log_text()}"
        return p.returncode

    def kill(self) -> None:
        """kill -9, as a crash."""
        if self.proc is None:
            return
        p, self.proc = self.proc, None
        if p.poll() is None:
            p.kill()
        p.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    # ---- requests --------------------------------------------------------------------------

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float = 30,
                chunked: bool = False) -> Response:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            try:
                conn.request(method, path, body=body, headers=headers or {},
                             encode_chunked=chunked)
            except (BrokenPipeError, ConnectionResetError):
                # The server may answer (413) and close before reading the whole body: read
                # its answer like a real client does.
                pass
            r = conn.getresponse()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def get(self, path: str, timeout: float = 30) -> Response:
        return self.request("GET", path, timeout=timeout)

    def post(self, path: str, body: Any = None, *, raw: bytes | None = None,
             write_key: str | None = WRITE_KEY, headers: dict[str, str] | None = None,
             gzip: bool = False, content_type: str = "application/json",
             timeout: float = 30) -> Response:
        """POST JSON (or `raw` bytes). write_key=None sends no Authorization header."""
        data = raw if raw is not None else json.dumps(body).encode()
        h = {"Content-Type": content_type}
        if not isinstance(data, (bytes, bytearray)):  # an iterator of chunks: chunked encoding
            assert not gzip
            h.update(headers or {})
            return self.request("POST", path, data, h, timeout=timeout, chunked=True)
        if write_key is not None:
            h["Authorization"] = basic(write_key)
        if gzip:
            data = gzip_mod.compress(data)
            h["Content-Encoding"] = "gzip"
        h.update(headers or {})
        return self.request("POST", path, data, h, timeout=timeout)

    def metrics(self) -> Metrics:
        r = self.request("GET", "/metrics", headers=METRICS_AUTH)
        assert r.status == 200, r
        return Metrics(parse_prometheus(r.body.decode()))

    def healthy(self) -> bool:
        return self.get("/healthz").status == 200

    def vm_hwm_kb(self) -> int:
        """Peak resident set size (VmHWM) of the server process, in kB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM in /proc status")

    # ---- stored events ---------------------------------------------------------------------

    def dump(self, source: str | None = None) -> list[dict]:
        """Stops the server (dump needs the data dir lock), then returns every stored event."""
        self.stop()
        cmd = [self.bin, "dump", "--config", str(self.config_path)]
        if source:
            cmd += ["--source", source]
        r = subprocess.run(cmd, capture_output=True, timeout=60)
        assert r.returncode == 0, f"dump failed rc={r.returncode}: {r.stderr.decode()}"
        return [json.loads(line) for line in r.stdout.decode().splitlines() if line.strip()]


class ServerFactory:
    """make(start=True, **kw) builds cls(dir, **kw) in a fresh tmp_path/<prefix><n> and starts it;
    kill_all() at teardown. The make_* fixtures of the suites with their own Server subclass
    are thin wrappers around one."""

    def __init__(self, tmp_path: Path, cls: type, prefix: str):
        self.tmp_path, self.cls, self.prefix = tmp_path, cls, prefix
        self.servers: list = []

    def __call__(self, start: bool = True, **kw):
        d = self.tmp_path / f"{self.prefix}{len(self.servers)}"
        d.mkdir()
        s = self.cls(d, **kw)
        self.servers.append(s)
        if start:
            s.start()
        return s

    def kill_all(self) -> None:
        for s in self.servers:
            s.kill()


@pytest.fixture
def make_server(tmp_path):
    """Factory: make_server(ingest={...}, log={...}) → a started Server. All are killed at teardown."""
    make = ServerFactory(tmp_path, Server, "server")
    yield make
    make.kill_all()


@pytest.fixture
def server(make_server) -> Server:
    return make_server()


def new_id(prefix: str = "e2e") -> str:
    return f"{prefix}-{os.urandom(8).hex()}"
