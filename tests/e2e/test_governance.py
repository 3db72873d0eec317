"""Tracking plans end to end, through the real server: valid events are delivered as sent,
flagged ones with context.violations, blocked ones stored but delivered nowhere (counted in the
response and /metrics); `switchyard violations list` shows them and `violations release`
delivers each exactly once after the plan is fixed, through the running server or offline; a
schema that does not compile stops the server from starting and a reload from applying."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from conftest import SOURCE, WRITE_KEY_2, Server, ServerFactory, new_id
from webhook_sink import WebhookSink, wait_for

ORDER_SCHEMA = {
    "type": "object",
    "properties": {"properties": {"type": "object", "required": ["total"],
                                  "properties": {"total": {"type": "number"}}}},
}
IDENTIFY_SCHEMA = {"properties": {"traits": {"type": "object", "required": ["email"]}}}


@dataclass
class PlanServer(Server):
    """A server with a webhook destination and a tracking plan over source `web`."""

    hook_url: str = ""
    plan: dict[str, Any] = field(default_factory=dict)

    def write_config(self) -> None:
        super().write_config()
        plan = {"name": "shop", "sources": [SOURCE],
                "events": {"Order Completed": {"schema": "order.json"}},
                "identify": {"schema": "identify.json"},
                "unplanned": "block", "violations": "block", **self.plan}
        for name, schema in (("order.json", ORDER_SCHEMA), ("identify.json", IDENTIFY_SCHEMA)):
            if not (self.workdir / name).exists():
                (self.workdir / name).write_text(json.dumps(schema))
        dest = {"name": "hooks", "type": "webhook", "sources": [SOURCE], "allow_private_network": True,
                "batch": {"max_events": 100, "max_wait": "20ms"},
                "settings": {"url": self.hook_url}}
        with open(self.config_path, "a") as f:
            f.write("destinations: " + json.dumps([dest]) + "\n")
            f.write("tracking_plans: " + json.dumps([plan]) + "\n")

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([self.bin, *args, "--config", str(self.config_path)],
                              capture_output=True, timeout=60)

    def violations(self, *args: str) -> list[dict]:
        r = self.cli("violations", "list", *args)
        assert r.returncode == 0, r.stderr.decode()
        return [json.loads(line) for line in r.stdout.decode().splitlines() if line.strip()]

    def release(self, *args: str) -> dict:
        r = self.cli("violations", "release", *args)
        assert r.returncode == 0, r.stderr.decode()
        return json.loads(r.stdout)


@pytest.fixture
def sink():
    s = WebhookSink()
    yield s
    s.stop()


@pytest.fixture
def make_plan_server(tmp_path, sink):
    make = ServerFactory(tmp_path, PlanServer, "plan")
    yield lambda start=True, **kw: make(start=start, hook_url=sink.url(), **kw)
    make.kill_all()


def order(mid: str, **props: Any) -> dict:
    return {"type": "track", "event": "Order Completed", "userId": "u1", "messageId": mid,
            "properties": props}


def test_valid_flagged_and_blocked_events_then_release_once(make_plan_server, sink):
    server = make_plan_server(plan={"violations": "flag", "unplanned": "block"})
    ok, flagged, unplanned, other = new_id(), new_id(), new_id(), new_id()
    r = server.post("/v1/batch", {"batch": [
        order(ok, total=9.99),
        order(flagged, total="lots"),
        {"type": "track", "event": "Mystery", "userId": "u1", "messageId": unplanned},
    ]})
    assert r.status == 200, r
    assert r.json() == {"success": True, "blocked": 1}
    # A source without a plan is not judged.
    r = server.post("/v1/track", {"type": "track", "event": "Mystery", "userId": "u2",
                                  "messageId": other}, write_key=WRITE_KEY_2)
    assert r.status == 200 and r.json() == {"success": True}, r
    # A duplicate of the blocked event is acknowledged as a duplicate, not counted again.
    r = server.post("/v1/track", {"type": "track", "event": "Mystery", "userId": "u1",
                                  "messageId": unplanned})
    assert r.json() == {"success": True}, r

    wait_for(lambda: len(sink.events()) >= 2, what="2 deliveries")
    time.sleep(0.3)  # a blocked event would have arrived by now too
    got = {e["messageId"]: e for e in sink.events()}
    assert set(got) == {ok, flagged}
    assert got[ok]["properties"] == {"total": 9.99}
    assert "violations" not in got[ok].get("context", {})
    assert got[flagged]["context"]["violations"] == [
        {"path": "properties.total", "rule": "type",
         "message": "Value type not permitted by 'type' constraint."}]

    m = server.metrics()
    assert m.get_value("switchyard_plan_events_total", plan="shop", event="Order Completed",
                       outcome="valid") == 1
    assert m.get_value("switchyard_plan_events_total", plan="shop", event="Order Completed",
                       outcome="flagged") == 1
    assert m.get_value("switchyard_plan_violations_total", plan="shop", event="__unplanned__",
                       rule="unplanned") == 2  # the duplicate was judged too
    wait_for(lambda: server.metrics().get_value("switchyard_delivery_plan_blocked_total",
                                                destination="hooks") == 1,
             what="blocked counted as filtered")

    listed = server.violations()
    assert [(v["messageId"], v["plan"], v["event"], v["released"]) for v in listed] == [
        (unplanned, "shop", "Mystery", False)]
    assert listed[0]["violations"][0]["rule"] == "unplanned"
    assert server.violations("--event", "Order Completed") == []

    # Today's plan still blocks it: the release leaves it where it is.
    assert server.release() == {"released": 0, "alreadyReleased": 0, "stillBlocked": 1,
                                "stillBlockedOffsets": [listed[0]["offset"]]}
    # The plan is fixed (unplanned events allowed now), the server reloads it, and the release
    # (through the running server) delivers the event once.
    server.plan = {"violations": "flag", "unplanned": "allow"}
    server.write_config()
    assert server.cli("reload").returncode == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rep = server.release()
        if rep["released"]:
            break
        time.sleep(0.1)  # SIGHUP is applied asynchronously
    assert rep["released"] == 1, rep
    wait_for(lambda: unplanned in sink.message_ids(), what="the released event")
    assert server.release() == {"released": 0, "alreadyReleased": 1, "stillBlocked": 0,
                                "stillBlockedOffsets": []}
    assert server.violations()[0]["released"] is True
    time.sleep(0.3)
    assert sink.message_ids().count(unplanned) == 1
    # Stored events: the blocked original and its released copy, both in the log.
    stored = [e for e in server.dump(SOURCE) if e["messageId"] == unplanned]
    assert len(stored) == 2


def test_offline_release_and_force(make_plan_server, sink):
    server = make_plan_server()
    mid = new_id()
    r = server.post("/v1/identify", {"type": "identify", "userId": "u1", "messageId": mid,
                                     "traits": {"name": "no email"}})
    assert r.json() == {"success": True, "blocked": 1}, r
    server.stop()
    # No server: the CLI appends itself under data_dir/LOCK. Still blocked without --force.
    assert server.release("--plan", "shop")["stillBlocked"] == 1
    assert server.release("--force")["released"] == 1
    assert server.release("--force")["released"] == 0
    server.start()
    wait_for(lambda: mid in sink.message_ids(), what="the forced release")
    time.sleep(0.3)
    assert sink.message_ids() == [mid]


def test_schemas_that_do_not_compile_are_config_errors(make_plan_server, sink):
    server = make_plan_server(start=False)
    server.write_config()
    (server.workdir / "order.json").write_text('{"type": "object", "properties": ')
    r = subprocess.run([server.bin, "check-config", str(server.config_path)],
                       capture_output=True, timeout=30)
    assert r.returncode == 2
    err = r.stderr.decode()
    assert "tracking_plans[0].events.Order Completed.schema" in err and "order.json" in err
    assert "not JSON" in err
    with pytest.raises(AssertionError, match="not JSON"):
        server.start(timeout=5)

    # A huge schema, and a running server refusing a reload to one.
    (server.workdir / "order.json").write_text(json.dumps(ORDER_SCHEMA))
    server.start()
    (server.workdir / "order.json").write_text(
        json.dumps({"description": "x" * (1 << 20), **ORDER_SCHEMA}))
    r = server.cli("reload")  # the CLI checks first and refuses
    assert r.returncode == 2 and "the limit is 1048576" in r.stderr.decode(), r
    os.kill(server.pid, signal.SIGHUP)  # the server refuses it too, applying nothing
    wait_for(lambda: "the limit is 1048576" in server.log_text(), what="the reload refused")
    # The old plan still runs.
    r = server.post("/v1/track", order(new_id(), total="lots"))
    assert r.json() == {"success": True, "blocked": 1}, r


# ---- the warehouse's `violations` table, SQLite and PostgreSQL ------------------------------------

from pg import pg_server  # noqa: E402,F401  (session fixture)
from test_warehouse import (PgReader, SqliteReader, WarehouseServer, pg_db,  # noqa: E402,F401
                            pg_dest, sqlite_dest)


@dataclass
class PlanWarehouseServer(WarehouseServer):
    def write_config(self) -> None:
        super().write_config()
        for name, schema in (("order.json", ORDER_SCHEMA), ("identify.json", IDENTIFY_SCHEMA)):
            (self.workdir / name).write_text(json.dumps(schema))
        plan = {"name": "shop", "sources": [SOURCE],
                "events": {"Order Completed": {"schema": "order.json"}},
                "identify": {"schema": "identify.json"}, "violations": "flag",
                "unplanned": "block"}
        with open(self.config_path, "a") as f:
            f.write("tracking_plans: " + json.dumps([plan]) + "\n")


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_warehouse_violations_table(kind, tmp_path, request):
    make = ServerFactory(tmp_path, PlanWarehouseServer, "pwh")
    try:
        server = make(start=False)
        if kind == "postgres":
            pg = request.getfixturevalue("pg_server")
            db, dsn = request.getfixturevalue("pg_db")
            server.destinations = [pg_dest(dsn)]
            name, reader, prefix = "pg", (lambda: PgReader(pg, db, "web")), "web."
        else:
            server.destinations = [sqlite_dest(server.workdir)]
            name, prefix = "dw", ""
            reader = lambda: SqliteReader(server.workdir / "warehouse" / "web.sqlite")  # noqa: E731
        server.start()
        ok, flagged, blocked = new_id(), new_id(), new_id()
        r = server.post("/v1/batch", {"batch": [
            order(ok, total=1), order(flagged, total="x"),
            {"type": "track", "event": "Mystery", "userId": "u1", "messageId": blocked}]})
        assert r.json() == {"success": True, "blocked": 1}, r
        server.wait_delivered(name, 3)  # the blocked one: its violations only
        db_ = reader()
        rows = db_.rows("SELECT event_id, plan, path, rule, message, received_at IS NOT NULL "
                        f"FROM {prefix}violations ORDER BY rule")
        norm = [[str(v) for v in row[:5]] for row in rows]
        assert norm == [
            [flagged, "shop", "properties.total", "type",
             "Value type not permitted by 'type' constraint."],
            [blocked, "shop", "event", "unplanned", "event 'Mystery' is not in tracking plan 'shop'"],
        ], rows
        # The blocked event itself is not in the warehouse; the other two are.
        ids = sorted(str(r[0]) for r in db_.rows(f"SELECT id FROM {prefix}tracks"))
        assert ids == sorted([ok, flagged])
    finally:
        make.kill_all()
