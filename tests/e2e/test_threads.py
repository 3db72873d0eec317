"""Every thread of a running server has a name (`top -H` shows no anonymous thread).

Linux gives a new thread its creator's name; a thread nobody named is called like the binary
(`switchyard`), which only the main thread may be. The server runs with every component that
starts threads (HTTP, log, dedupe flusher, replay watcher, a webhook destination with libcurl,
a SQLite warehouse, the archive with its compression threads) under load, and /proc is sampled
many times so that short-lived threads are seen too.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conftest import Server, ServerFactory
from webhook_sink import WebhookSink


@dataclass
class ThreadsServer(Server):
    archive: dict[str, Any] = field(default_factory=dict)
    destinations: list[dict[str, Any]] = field(default_factory=list)

    def write_config(self) -> None:
        super().write_config()
        with open(self.config_path, "a") as f:
            f.write("archive: " + json.dumps(self.archive) + "\n")
            f.write("destinations: " + json.dumps(self.destinations) + "\n")


@pytest.fixture
def make_threads_server(tmp_path):
    make = ServerFactory(tmp_path, ThreadsServer, "threads")
    yield make
    make.kill_all()


def thread_names(pid: int) -> dict[int, str]:
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out[int(task.name)] = (task / "comm").read_text().strip()
        except OSError:  # the thread ended between listing and reading
            pass
    return out


def test_every_server_thread_is_named(make_threads_server):
    sink = WebhookSink()
    try:
        server = make_threads_server(start=False)
        # Small archive files and a small compression member size are not configurable; many
        # events make the archiver compress while we sample.
        server.archive = {"store": "local", "path": "./data/archive", "roll_size": "1MB",
                          "roll_age": "200ms"}
        server.destinations = [
            {"name": "hook", "type": "webhook", "allow_private_network": True,
             "batch": {"max_events": 100, "max_wait": "10ms"}, "settings": {"url": sink.url()}},
            {"name": "dw", "type": "sqlite", "sources": ["web"],
             "settings": {"path": str(server.workdir / "warehouse"), "sync_interval": "50ms"}},
        ]
        server.start()
        main_name = Path(f"/proc/{server.pid}/comm").read_text().strip()
        seen: dict[int, str] = {}
        deadline = time.monotonic() + 3
        props = {"text": "x" * 2000}
        while time.monotonic() < deadline:
            batch = [{"type": "track", "userId": f"u{i}", "event": f"E{i % 5}",
                      "messageId": str(uuid.uuid4()), "properties": props} for i in range(200)]
            assert server.post("/v1/batch", {"batch": batch}).status == 200
            for tid, name in thread_names(server.pid).items():
                if tid != server.pid:
                    seen[tid] = name  # the latest name: a thread names itself when it starts
        # A thread is called like its creator until its first instruction names it: look again
        # at those still running before calling them unnamed.
        time.sleep(0.2)
        for tid, name in thread_names(server.pid).items():
            if tid in seen:
                seen[tid] = name
        unnamed = {tid: name for tid, name in seen.items() if name in ("", main_name)}
        assert not unnamed, f"threads without a name of their own: {unnamed}; all: {seen}"
        names = set(seen.values())
        for expected in ("sy-io-0", "sy-log-write", "sy-log-done", "sy-dedupe-flush",
                         "sy-replay-watch", "sy-dest-hook", "sy-dest-dw", "sy-archive",
                         "sy-http-out-0"):
            assert expected in names, f"{expected} not among {sorted(names)}"
        assert os.path.basename(server.bin)[:15] == main_name
    finally:
        sink.stop()
