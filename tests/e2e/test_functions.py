"""User functions end to end (docs/functions.md): events sent by the real @segment/analytics-node
library reach webhook receivers through functions in the three styles — PII scrubbed (Jitsu),
events renamed and pages dropped (Segment), orders fanned out and views dropped (RudderStack),
enriched from ctx.store (which survives a restart) — a throwing function dead-letters with its
stack, `switchyard functions test|check` work, a SIGHUP reload with a broken file keeps the
previous version and a good one replaces it, and every metric per function moves."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conftest import E2E, SOURCE, WRITE_KEY, Server, ServerFactory, new_id
from webhook_sink import WebhookSink, wait_for

FUNCTIONS = E2E / "testdata" / "functions"


@dataclass
class FunctionServer(Server):
    """Server with `functions:` and `destinations:` (JSON, which YAML reads as is)."""

    functions: list[dict[str, Any]] = field(default_factory=list)
    destinations: list[dict[str, Any]] = field(default_factory=list)

    def write_config(self) -> None:
        super().write_config()
        with open(self.config_path, "a") as f:
            f.write("functions: " + json.dumps(self.functions) + "\n")
            f.write("destinations: " + json.dumps(self.destinations) + "\n")

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([self.bin, *args, "--config", str(self.config_path)],
                              capture_output=True, timeout=60)


@pytest.fixture
def sinks():
    made: list[WebhookSink] = []

    def make(**kw) -> WebhookSink:
        s = WebhookSink(**kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


@pytest.fixture
def make_server(tmp_path):
    make = ServerFactory(tmp_path, FunctionServer, "functions")
    yield lambda **kw: make(**kw)
    make.kill_all()


@pytest.fixture(scope="module")
def node_bin() -> str:
    node = shutil.which("node")
    if not node:
        pytest.fail("node not found: run scripts/install-deps.sh test")
    if not (E2E / "node_modules" / "@segment" / "analytics-node").is_dir():
        pytest.fail("@segment/analytics-node missing: run scripts/install-test-deps.sh")
    return node


def send_with_node(node: str, server: Server, run_id: str, count: int = 2) -> list[dict]:
    """Per round: identify (traits.email), track Order Completed, track Viewed (anonymous), page,
    screen Home, group, alias — with the real library."""
    opts = {"host": f"http://127.0.0.1:{server.port}", "writeKey": WRITE_KEY, "runId": run_id,
            "count": count, "flushAt": 50}
    p = subprocess.run([node, str(E2E / "node" / "send.js"), json.dumps(opts)], cwd=E2E,
                       capture_output=True, timeout=60)
    assert p.returncode == 0, (p.stdout.decode(), p.stderr.decode())
    out = json.loads(p.stdout.decode().strip().splitlines()[-1])
    assert out["errors"] == [], out
    return out["sent"]


def hook(name: str, url: str, functions: list[str]) -> dict:
    return {"name": name, "type": "webhook", "sources": [SOURCE], "allow_private_network": True,
            "batch": {"max_events": 100, "max_wait": "20ms"}, "functions": functions,
            "settings": {"url": url}}


def copy_functions(tmp: Path) -> Path:
    d = tmp / "fn"
    shutil.copytree(FUNCTIONS, d)
    return d


def test_three_styles_through_the_real_server(make_server, sinks, node_bin, tmp_path):
    fn = copy_functions(tmp_path)
    s_scrub, s_rename, s_fan, s_enrich, s_broken, s_plain = (sinks() for _ in range(6))
    server = make_server(
        functions=[
            {"name": "scrub", "file": str(fn / "scrub.js"), "settings": {"marker": "v1"}},
            {"name": "rename", "file": str(fn / "rename.js")},
            {"name": "fanout", "file": str(fn / "fanout.js")},
            {"name": "enrich", "file": str(fn / "enrich.js")},
            {"name": "broken", "file": str(fn / "broken.js")},
        ],
        destinations=[
            hook("scrubbed", s_scrub.url(), ["scrub"]),
            hook("renamed", s_rename.url(), ["rename"]),
            hook("fanned", s_fan.url(), ["fanout"]),
            hook("enriched", s_enrich.url(), ["enrich", "scrub"]),  # a chain
            hook("broken", s_broken.url(), ["broken"]),
            hook("plain", s_plain.url(), []),
        ])
    run_id = new_id("fn")
    sent = send_with_node(node_bin, server, run_id, count=2)
    assert len(sent) == 14
    # Without functions: every event as stored.
    wait_for(lambda: len(s_plain.events()) >= 14, what="14 plain events")
    plain = s_plain.events()
    assert any("email" in e.get("traits", {}) for e in plain)

    # PII scrubbing: no email anywhere, no IP, the function's settings applied.
    wait_for(lambda: len(s_scrub.events()) >= 14, what="14 scrubbed events")
    for e in s_scrub.events():
        body = json.dumps(e)
        assert "@example.com" not in body, e
        assert "ip" not in e.get("context", {}), e
        assert e["properties"]["scrubbed_by"] == "v1"

    # Renaming and dropping (Segment style): tracks renamed, pages dropped, screens Home rejected.
    wait_for(lambda: server.metrics().get_value("switchyard_delivery_dead_lettered_total",
                                                destination="renamed") == 2,
             what="the two screens dead-lettered")
    wait_for(lambda: len(s_rename.events()) >= 8, what="renamed events")
    renamed = s_rename.events()
    types = sorted(e["type"] for e in renamed)
    assert types == ["alias"] * 2 + ["group"] * 2 + ["identify"] * 2 + ["track"] * 4, types
    assert sorted({e["event"] for e in renamed if e["type"] == "track"}) == [
        "order_completed", "viewed"]

    # Fan-out and drop (RudderStack style): each order becomes two events, views are dropped.
    wait_for(lambda: len(s_fan.events()) >= 14, what="fanned-out events")
    fanned = s_fan.events()
    tracks = [e for e in fanned if e["type"] == "track"]
    assert sorted(e["event"] for e in tracks) == ["Order Completed"] * 2 + ["Revenue"] * 2
    for r in (e for e in tracks if e["event"] == "Revenue"):
        assert r["properties"] == {"revenue": 9.99, "source": SOURCE}
        assert r["messageId"].endswith("-2")  # copies get their own messageId
    assert len(fanned) == 14  # 14 sent − 2 views + 2 copies

    # Enrichment from ctx.store, then the next function of the chain.
    wait_for(lambda: len(s_enrich.events()) >= 14, what="enriched events")
    orders = [e for e in s_enrich.events() if e.get("event") == "Order Completed"]
    assert len(orders) == 2 and all(o["properties"]["domain"] == "example.com" for o in orders)
    assert all("@example.com" not in json.dumps(e) for e in s_enrich.events())
    # Jitsu: undefined keeps the event (the identify went on, scrubbed by the chain's second step).
    assert len([e for e in s_enrich.events() if e["type"] == "identify"]) == 2

    # A throwing function: the tracks go to the dead-letter store with the JavaScript stack.
    wait_for(lambda: server.metrics().get_value("switchyard_delivery_dead_lettered_total",
                                                destination="broken") == 4,
             what="broken tracks dead-lettered")
    r = server.cli("dlq", "list", "--destination", "broken")
    assert r.returncode == 0, r.stderr.decode()
    letters = [json.loads(line) for line in r.stdout.decode().splitlines() if line.strip()]
    assert len(letters) == 4
    for letter in letters:
        assert letter["reason"].startswith("function broken: thrown: TypeError"), letter
        assert "transformEvent@" in letter["reason"] and "broken.js:4" in letter["reason"], letter
    wait_for(lambda: len(s_broken.events()) >= 10, what="the broken function's other events")

    m = server.metrics()
    assert m.get_value("switchyard_function_invocations_total", function="fanout") == 14
    assert m.get_value("switchyard_function_dropped_total", function="fanout") == 2
    assert m.get_value("switchyard_function_fanned_out_total", function="fanout") == 2
    assert m.get_value("switchyard_function_errors_total", function="broken", kind="thrown") == 4
    assert m.get_value("switchyard_function_errors_total", function="rename",
                       kind="validation") == 2
    assert m.get_value("switchyard_function_dropped_total", function="rename") == 2
    assert m.get_value("switchyard_function_seconds_count", function="scrub") >= 14


def test_store_survives_a_restart_and_reload_keeps_the_last_good_version(
        make_server, sinks, tmp_path):
    fn = copy_functions(tmp_path)
    sink = sinks()
    server = make_server(
        functions=[{"name": "enrich", "file": str(fn / "enrich.js")},
                   {"name": "scrub", "file": str(fn / "scrub.js"), "settings": {"marker": "v1"}}],
        destinations=[hook("hooks", sink.url(), ["enrich", "scrub"])])
    user = new_id("u")
    r = server.post("/v1/identify", {"userId": user, "traits": {"email": "x@corp.test"}})
    assert r.status == 200, r
    wait_for(lambda: server.metrics().get_value("switchyard_function_invocations_total",
                                                function="enrich") == 1, what="identify handled")
    server.stop()
    server.start()
    assert server.post("/v1/track", {"userId": user, "event": "A"}).status == 200
    wait_for(lambda: any(e.get("event") == "A" for e in sink.events()), what="track A")
    a = next(e for e in sink.events() if e.get("event") == "A")
    assert a["properties"] == {"domain": "corp.test", "scrubbed_by": "v1"}

    # A broken file: rejected with file and line; the previous version keeps running.
    (fn / "scrub.js").write_text("export default function (event) {\n  return event +;\n}\n")
    r = server.cli("functions", "check")
    assert r.returncode == 2 and "scrub.js:2: SyntaxError" in r.stderr.decode(), r
    server.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "scrub.js:2: SyntaxError" in server.log_text(), what="reload error logged")
    assert server.post("/v1/track", {"userId": user, "event": "B"}).status == 200
    wait_for(lambda: any(e.get("event") == "B" for e in sink.events()), what="track B")
    b = next(e for e in sink.events() if e.get("event") == "B")
    assert b["properties"]["scrubbed_by"] == "v1"

    # A good new version replaces it without a restart.
    (fn / "scrub.js").write_text(
        "export default (event, ctx) => ({...event, properties: {...event.properties, "
        "scrubbed_by: 'v2'}});\n")
    server.proc.send_signal(signal.SIGHUP)
    tries = iter(range(1000))

    def c_is_v2() -> bool:  # the reload is asynchronous: send until an event shows v2
        name = f"C{next(tries)}"
        server.post("/v1/track", {"userId": user, "event": name})
        wait_for(lambda: any(e.get("event") == name for e in sink.events()), what=name)
        return any(e.get("event") == name and e["properties"].get("scrubbed_by") == "v2"
                   for e in sink.events())

    wait_for(c_is_v2, what="v2 running")
    assert server.running()


def test_functions_test_command(make_server, tmp_path):
    fn = copy_functions(tmp_path)
    server = make_server(start=False, functions=[
        {"name": "fanout", "file": str(fn / "fanout.js")},
        {"name": "enrich", "file": str(fn / "enrich.js")},
        {"name": "broken", "file": str(fn / "broken.js")}], destinations=[])
    server.write_config()
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"type": "track", "event": "Order Completed", "userId": "u",
                                 "messageId": "m", "properties": {"revenue": 5}}))
    r = server.cli("functions", "test", "--function", "fanout", "--event", str(event))
    out = r.stdout.decode()
    assert r.returncode == 0, (out, r.stderr.decode())
    assert "function: fanout (rudderstack style)" in out
    assert "result: 2 events" in out and '"event":"Revenue"' in out and '"messageId":"m-2"' in out
    assert "time: compile" in out
    ident = tmp_path / "identify.json"
    ident.write_text(json.dumps({"type": "identify", "userId": "u", "traits": {"email": "a@b.c"}}))
    r = server.cli("functions", "test", "--function", "enrich", "--event", str(ident))
    assert r.returncode == 0 and "result: kept unchanged" in r.stdout.decode()
    assert "[info] remembered domain:u" in r.stdout.decode()
    r = server.cli("functions", "test", "--function", "broken", "--event", str(event))
    assert r.returncode == 1
    assert "result: error thrown: TypeError" in r.stdout.decode()
    assert "transformEvent@" in r.stdout.decode()
    r = server.cli("functions", "check")
    assert r.returncode == 0 and "3 functions compiled" in r.stdout.decode(), r


def test_a_function_that_does_not_compile_stops_serve_and_check_config(make_server, tmp_path):
    bad = tmp_path / "bad.js"
    bad.write_text("function transformEvent(e) {\n\n  return e +;\n}\n")
    server = make_server(start=False, functions=[{"name": "bad", "file": str(bad)}],
                         destinations=[])
    server.write_config()
    r = subprocess.run([server.bin, "check-config", str(server.config_path)], capture_output=True)
    assert r.returncode == 2 and f"{bad}:3: SyntaxError" in r.stderr.decode(), r
    with pytest.raises(AssertionError, match="SyntaxError"):
        server.start()


def test_functions_through_the_admin_api_and_redrive_after_the_fix(tmp_path):
    """A function that throws dead-letters the stored event; PUT through the admin API refuses a
    version that does not compile (file, line, message; the old one keeps running) and applies a
    fixed one live; /test runs a sample; a redrive then runs today's function on the letter."""
    from test_admin import AdminServer
    from test_admin_live import post_track

    fn = tmp_path / "tag.js"
    fn.write_text("export default function (e) {\n"
                  "  if (e.event === 'Bad') throw new Error('not yet');\n"
                  "  return {...e, properties: {...e.properties, tagged: 1}};\n}\n")
    sink = WebhookSink()
    server = AdminServer(tmp_path)
    try:
        server.write_config(extra=[
            "functions:",
            f"  - {{name: tag, file: '{fn}'}}",
            "destinations:",
            "  - name: hook",
            "    type: webhook",
            "    allow_private_network: true",
            "    functions: [tag]",
            "    batch: {max_events: 10, max_wait: 20ms}",
            f"    settings: {{url: '{sink.url()}'}}",
        ])
        editor = {"Authorization": "Bearer " +
                  server.cli("tokens", "create", "ed", "--role", "editor").stdout.strip()}
        viewer = {"Authorization": "Bearer " +
                  server.cli("tokens", "create", "vi", "--role", "viewer").stdout.strip()}
        admin = {"Authorization": "Bearer " +
                 server.cli("tokens", "create", "ad", "--role", "admin").stdout.strip()}
        server.start()

        def call(method, path, body=None, headers=editor):
            status, _, raw = server.request(method, path, body, headers=headers)
            return status, json.loads(raw) if raw else None

        post_track(server, "Bad", "fn-bad-1")
        post_track(server, "Good", "fn-good-1")
        wait_for(lambda: any(e.get("event") == "Good" for e in sink.events()), what="Good")
        status, dlq = call("GET", "/api/v1/destinations/hook/dlq")
        assert status == 200 and dlq["total"] == 1, dlq
        assert dlq["entries"][0]["reason"].startswith("function tag: thrown: Error: not yet")

        # Readers see the function; only editors change it.
        status, listed = call("GET", "/api/v1/functions", headers=viewer)
        assert status == 200 and [f["name"] for f in listed["functions"]] == ["tag"], listed
        status, got = call("GET", "/api/v1/functions/tag", headers=viewer)
        assert status == 200 and got["origin"] == "file" and "not yet" in got["source"], got
        assert got["limits"] == {"event_timeout": "100ms", "batch_timeout": "1s",
                                 "memory": "64MB"}, got
        fixed = "export default (e) => ({...e, properties: {...e.properties, tagged: 2}});\n"
        status, _ = call("PUT", "/api/v1/functions/tag", {"source": fixed}, headers=viewer)
        assert status == 403

        # A version that does not compile: 400 naming file and line; nothing changes.
        status, err = call("PUT", "/api/v1/functions/tag",
                           {"source": "export default (e) => {\n  return e +;\n};\n"})
        assert status == 400 and err["error"]["code"] == "compile_error", err
        assert err["error"]["file"] == "tag.js" and err["error"]["line"] == 2, err
        assert "SyntaxError" in err["error"]["message"], err
        status, still = call("GET", "/api/v1/functions/tag")
        assert still["origin"] == "file" and "not yet" in still["source"], still
        # A limit out of range: 400 naming the key.
        status, err = call("PUT", "/api/v1/functions/tag",
                           {"source": "export default (e) => e;", "limits": {"event_timeout": "2m"}})
        assert status == 400 and err["error"]["field"] == "limits.event_timeout", err
        assert "at most 60s" in err["error"]["message"], err

        # A sample through unsaved code, then through the stored one.
        sample = {"type": "track", "event": "Bad", "userId": "u", "properties": {"price": 9.99}}
        status, run = call("POST", "/api/v1/functions/tag/test", {"event": sample,
                                                                  "source": fixed})
        assert status == 200 and run["result"] == "events", run
        assert run["events"][0]["properties"] == {"price": 9.99, "tagged": 2}, run
        status, run = call("POST", "/api/v1/functions/tag/test", {"event": sample})
        assert status == 200 and run["result"] == "error", run
        assert run["error"]["kind"] == "thrown" and "not yet" in run["error"]["message"], run
        assert run["style"] == "jitsu" and "compile" in run["timing_ms"], run

        # The fix, applied live and stored in the overlay.
        status, put = call("PUT", "/api/v1/functions/tag",
                           {"source": fixed, "limits": {"event_timeout": "250ms"}})
        assert status == 200 and put["origin"] == "console", put
        assert put["limits"]["event_timeout"] == "250ms", put
        overlay = json.loads((server.data_dir / "config-overlay.json").read_text())
        assert overlay["functions"]["tag"]["fields"]["source"] == fixed, overlay
        post_track(server, "After", "fn-after-1")
        wait_for(lambda: any(e.get("event") == "After" and e["properties"].get("tagged") == 2
                             for e in sink.events()), what="the new version running")

        # Redrive: the letter (the stored event, before functions) runs through today's function.
        status, res = call("POST", "/api/v1/destinations/hook/dlq/redrive", {})
        assert status == 200 and res["delivered"] == 1 and res["kept"] == 0, res
        bad = [e for e in sink.events() if e.get("event") == "Bad"]
        assert len(bad) == 1 and bad[0]["properties"]["tagged"] == 2, bad

        # Audit-logged.
        status, audit = call("GET", "/api/v1/audit?limit=100", headers=admin)
        actions = [e["action"] for e in audit["entries"]]
        assert "function.put" in actions and "function.test" in actions, actions

        # It survives a restart (the overlay), the file still says the old code.
        server.stop()
        server.start()
        status, got = call("GET", "/api/v1/functions/tag")
        assert got["origin"] == "console" and got["source"] == fixed, got
        # DELETE drops the API's version: the file's runs again.
        status, back = call("DELETE", "/api/v1/functions/tag")
        assert status == 200 and back["origin"] == "file" and "not yet" in back["source"], back
        status, _ = call("DELETE", "/api/v1/functions/tag")
        assert status == 409
    finally:
        server.stop()
        sink.stop()
