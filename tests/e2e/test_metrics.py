"""/metrics against its documentation (docs/metrics.md), and the label cardinality cap.

A server with every metric-exporting component configured (a webhook destination, a SQLite
warehouse, the archive) is driven until each component has worked, then:
- every family `/metrics` serves is in the table of docs/metrics.md, with the same type and
  label names, and every family in the table is served;
- past 1,000 label sets a family records new ones in its `__overflow__` series and counts them
  in switchyard_metrics_series_dropped_total (issue 18: 20,000 event names made 20,002 series).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conftest import METRICS_AUTH, REPO, WRITE_KEY_2, Server, ServerFactory
from webhook_sink import WebhookSink, wait_for

DOC = REPO / "docs" / "metrics.md"
# A row of the table: | `name` | type | `label`, `label` | meaning |
_DOC_ROW = re.compile(r"^\|\s*`(switchyard_[a-z0-9_]+)`\s*\|\s*(\w+)\s*\|([^|]*)\|")
_TYPE = re.compile(r"^# TYPE (\S+) (\S+)$")
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s")
_LABEL_NAME = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"')


@dataclass
class MetricsServer(Server):
    archive: dict[str, Any] = field(default_factory=dict)
    destinations: list[dict[str, Any]] = field(default_factory=list)
    functions: list[dict[str, Any]] = field(default_factory=list)

    def write_config(self) -> None:
        super().write_config()
        with open(self.config_path, "a") as f:
            if self.archive:
                f.write("archive: " + json.dumps(self.archive) + "\n")
            if self.destinations:
                f.write("destinations: " + json.dumps(self.destinations) + "\n")
            if self.functions:
                f.write("functions: " + json.dumps(self.functions) + "\n")


@pytest.fixture
def make_metrics_server(tmp_path):
    make = ServerFactory(tmp_path, MetricsServer, "metrics")
    yield make
    make.kill_all()


def warehouse(workdir: Path) -> dict:
    return {"name": "dw", "type": "sqlite", "sources": ["web", "backend"],
            "settings": {"path": str(workdir / "warehouse"), "sync_interval": "100ms"}}


def documented() -> dict[str, tuple[str, set[str]]]:
    """docs/metrics.md's table: name → (type, label names)."""
    out: dict[str, tuple[str, set[str]]] = {}
    for line in DOC.read_text().splitlines():
        m = _DOC_ROW.match(line)
        if m:
            assert m.group(1) not in out, f"{m.group(1)} is listed twice in {DOC}"
            out[m.group(1)] = (m.group(2), set(re.findall(r"`([a-z_]+)`", m.group(3))))
    assert len(out) > 20, f"cannot read the metrics table of {DOC}"
    return out


def served(text: str) -> tuple[dict[str, str], dict[str, set[frozenset]]]:
    """/metrics text → (family → type, family → the label-name sets of its samples)."""
    types: dict[str, str] = {}
    labels: dict[str, set[frozenset]] = {}
    for line in text.splitlines():
        t = _TYPE.match(line)
        if t:
            types[t.group(1)] = t.group(2)
            continue
        if not line or line.startswith("#"):
            continue
        s = _SAMPLE.match(line)
        assert s, f"unparseable metrics line: {line!r}"
        name, names = s.group(1), set(_LABEL_NAME.findall(s.group(2) or ""))
        for suffix in ("_bucket", "_sum", "_count"):
            base = name[: -len(suffix)]
            if name.endswith(suffix) and types.get(base) == "histogram":
                name = base
                names.discard("le")
        labels.setdefault(name, set()).add(frozenset(names))
    return types, labels


def track(event: str, **extra: Any) -> dict:
    return {"type": "track", "userId": "u1", "event": event, "messageId": str(uuid.uuid4()),
            "properties": {"n": 1}, **extra}


def test_served_metrics_match_the_documented_list(make_metrics_server):
    sink = WebhookSink()
    try:
        server = make_metrics_server(start=False)
        server.archive = {"store": "local", "path": "./data/archive", "roll_size": "16KB",
                          "roll_age": "300ms"}
        # A user function on the hook, so the switchyard_function_* series exist.
        (server.workdir / "tag.js").write_text("export default (e) => ({...e, tagged: true});\n")
        server.functions = [{"name": "tag", "file": str(server.workdir / "tag.js")}]
        server.destinations = [
            {"name": "hook", "type": "webhook", "allow_private_network": True,
             "batch": {"max_events": 50, "max_wait": "20ms"}, "settings": {"url": sink.url()},
             "functions": ["tag"]},
            warehouse(server.workdir),
        ]
        server.start()
        # Work for every component: accepted, rejected and duplicate events, deliveries,
        # warehouse loads, archive uploads.
        batch = [track("Order Completed") for _ in range(60)]
        assert server.post("/v1/batch", {"batch": batch}).status == 200
        assert server.post("/v1/batch", {"batch": batch[:5]}).status == 200  # duplicates
        r = server.post("/v1/track", {"type": "track", "event": "no user"})
        assert r.status == 400, r
        wait_for(lambda: server.metrics().get_value("switchyard_delivery_delivered_total",
                                                    destination="hook") == 60, 20, "delivered")
        wait_for(lambda: server.metrics().get_value("switchyard_warehouse_loads_total",
                                                    destination="dw", result="ok") >= 1,
                 20, "loaded")
        wait_for(lambda: server.metrics().get_value("switchyard_archive_files_total") >= 1,
                 20, "archived")

        text = server.request("GET", "/metrics", headers=METRICS_AUTH).body.decode()
        types, labels = served(text)
        doc = documented()
        undocumented = sorted(set(types) - set(doc))
        # The kafka backend's families are served only in cluster mode (tests/e2e/test_kafka.py
        # checks them against this table), the TLS handshake counter only by a listener with TLS
        # (src/http/tls_test.cc checks it is served).
        only_elsewhere = {"switchyard_http_tls_handshake_failures_total"}
        missing = sorted(n for n in set(doc) - set(types)
                         if not n.startswith("switchyard_kafka_") and n not in only_elsewhere)
        assert not undocumented, f"served but not in docs/metrics.md: {undocumented}"
        assert not missing, f"in docs/metrics.md but not served: {missing}"
        for name, (kind, label_names) in doc.items():
            if name not in types:  # a kafka family or the TLS counter (above)
                continue
            assert types[name] == kind, f"{name}: served as {types[name]}, documented {kind}"
            for got in labels.get(name, set()):
                assert got == label_names, \
                    f"{name}: served labels {sorted(got)}, documented {sorted(label_names)}"
    finally:
        sink.stop()


def test_label_sets_past_the_cap_share_one_overflow_series(make_metrics_server):
    """Issue 18: every event name becomes a warehouse table and a series of the per-table
    counters; 20,000 names made 20,002 series (1.6 MB scrape, 240 MB RSS). 1,200 names, 600 per
    source: the family keeps 1,000 series plus one overflow, the totals stay right, and the
    dropped observations are counted."""
    server = make_metrics_server(start=False)
    server.destinations = [warehouse(server.workdir)]
    server.start()
    names = [f"Event {i:04d}" for i in range(1200)]
    for start in range(0, len(names), 100):
        key = {} if start < 600 else {"write_key": WRITE_KEY_2}
        r = server.post("/v1/batch", {"batch": [track(n) for n in names[start:start + 100]]}, **key)
        assert r.status == 200, r

    family = "switchyard_warehouse_rows_loaded_total"

    def rows(m) -> float:
        return sum(v for (name, _), v in m.items() if name == family)

    # Each event is one row of `tracks` and one of its own table.
    wait_for(lambda: rows(server.metrics()) == 2 * len(names), 60, "every row loaded and counted")
    m = server.metrics()
    series = [labels for (name, labels) in m if name == family]
    assert len(series) == 1000 + 1, len(series)
    overflow = m.get_value(family, destination="__overflow__", table="__overflow__")
    assert overflow > 0
    assert m.get_value("switchyard_metrics_series_dropped_total", family=family) > 0
    # Tables seen before the cap keep their own series.
    assert m.get_value(family, destination="dw", table="tracks") == len(names)
    assert len(server.request("GET", "/metrics", headers=METRICS_AUTH).body) < 400_000
