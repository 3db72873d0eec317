"""/metrics: the label cardinality cap.

Past 1,000 label sets a family records new ones in its `__overflow__` series and counts them in
switchyard_metrics_series_dropped_total (issue 18: 20,000 event names made 20,002 series).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conftest import WRITE_KEY_2, Server, ServerFactory
from webhook_sink import wait_for


@dataclass
class MetricsServer(Server):
    archive: dict[str, Any] = field(default_factory=dict)
    destinations: list[dict[str, Any]] = field(default_factory=list)

    def write_config(self) -> None:
        super().write_config()
        with open(self.config_path, "a") as f:
            if self.archive:
                f.write("archive: " + json.dumps(self.archive) + "\n")
            if self.destinations:
                f.write("destinations: " + json.dumps(self.destinations) + "\n")


@pytest.fixture
def make_metrics_server(tmp_path):
    make = ServerFactory(tmp_path, MetricsServer, "metrics")
    yield make
    make.kill_all()


def warehouse(workdir: Path) -> dict:
    return {"name": "dw", "type": "sqlite", "sources": ["web", "backend"],
            "settings": {"path": str(workdir / "warehouse"), "sync_interval": "100ms"}}


def track(event: str, **extra: Any) -> dict:
    return {"type": "track", "userId": "u1", "event": event, "messageId": str(uuid.uuid4()),
            "properties": {"n": 1}, **extra}


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
    assert len(server.get("/metrics").body) < 400_000
