"""Delivery end to end: events posted to the real server reach local webhook receivers — signed,
retried on 503, dead-lettered on 400 (listed and re-driven with `switchyard dlq`), routed by
the integrations object and filters, refused on loopback without allow_private_network,
isolated from a failing destination, and delivered at least once across kill -9."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from conftest import SOURCE, SOURCE_2, WRITE_KEY_2, Server, ServerFactory, new_id
from webhook_sink import WebhookSink, always, wait_for


@dataclass
class DeliveryServer(Server):
    """Server with a `destinations:` section (written as JSON, which YAML reads as is)."""

    destinations: list[dict[str, Any]] = field(default_factory=list)

    def write_config(self) -> None:
        super().write_config()
        if self.destinations:
            with open(self.config_path, "a") as f:
                f.write("destinations: " + json.dumps(self.destinations) + "\n")

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([self.bin, *args, "--config", str(self.config_path)],
                              capture_output=True, timeout=60)

    def dlq_list(self, destination: str | None = None) -> list[dict]:
        args = ["dlq", "list"] + (["--destination", destination] if destination else [])
        r = self.cli(*args)
        assert r.returncode == 0, r.stderr.decode()
        return [json.loads(line) for line in r.stdout.decode().splitlines() if line.strip()]

    def metric(self, name: str, destination: str) -> float:
        return self.metrics().get_value(name, destination=destination)


@pytest.fixture(autouse=True)
def test_destinations(monkeypatch):
    """The suite uses the test doubles `flaky` and `blackhole`, which the server and the CLI offer
    only with SWITCHYARD_TEST_DESTINATIONS=1 (inherited by every process the tests start)."""
    monkeypatch.setenv("SWITCHYARD_TEST_DESTINATIONS", "1")


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
def make_delivery_server(tmp_path):
    make = ServerFactory(tmp_path, DeliveryServer, "delivery")
    yield lambda destinations, start=True: make(start=start, destinations=destinations)
    make.kill_all()


def webhook(name: str, url: str, **settings: Any) -> dict:
    return {"name": name, "type": "webhook", "sources": [SOURCE], "allow_private_network": True,
            "batch": {"max_events": 100, "max_wait": "20ms"}, "settings": {"url": url, **settings}}


def post_tracks(server: Server, n: int, **extra: Any) -> list[str]:
    ids = [new_id() for _ in range(n)]
    for start in range(0, n, 100):
        batch = [{"type": "track", "userId": f"u{i % 7}", "event": "Signed Up",
                  "messageId": mid, **extra} for i, mid in enumerate(ids[start:start + 100])]
        r = server.post("/v1/batch", {"batch": batch})
        assert r.status == 200, r
    return ids


def test_events_reach_the_webhook_signed_with_headers(make_delivery_server, sinks):
    sink = sinks()
    server = make_delivery_server([webhook("hooks", sink.url(), secret="s3cr3t",
                                           headers={"X-Team": "growth"})])
    ids = post_tracks(server, 5, properties={"plan": "pro"})
    wait_for(lambda: len(sink.requests()) >= 5, what="5 webhook requests")
    reqs = sink.requests()
    assert sorted(r.json()["messageId"] for r in reqs) == sorted(ids)
    for r in reqs:
        assert r.method == "POST" and r.path == "/hook"
        assert r.headers["content-type"] == "application/json"
        assert r.headers["x-team"] == "growth"
        expected = hmac.new(b"s3cr3t", r.body, hashlib.sha256).hexdigest()
        assert r.headers["x-signature"] == f"sha256={expected}"
        event = r.json()
        assert event["type"] == "track" and event["event"] == "Signed Up"
        assert event["properties"] == {"plan": "pro"} and "receivedAt" in event
    wait_for(lambda: server.metric("switchyard_delivery_delivered_total", "hooks") == 5,
             what="delivered metric")
    m = server.metrics()
    assert m.get_value("switchyard_delivery_request_seconds_count", destination="hooks") >= 5


def test_batched_webhook_gets_json_arrays(make_delivery_server, sinks):
    sink = sinks()
    server = make_delivery_server([webhook("hooks", sink.url(), batch="true", max_events="50")])
    ids = post_tracks(server, 120)
    wait_for(lambda: len(sink.events()) >= 120, what="120 events")
    assert sorted(sink.message_ids()) == sorted(ids)
    for r in sink.requests():
        assert isinstance(r.json(), list) and 1 <= len(r.json()) <= 50


def test_503_then_200_is_delivered_after_retry(make_delivery_server, sinks):
    sink = sinks(answer=lambda n, req: (503, b"busy", {}) if n < 2 else (200, b"ok", {}))
    server = make_delivery_server([webhook("hooks", sink.url())])
    ids = post_tracks(server, 1)
    wait_for(lambda: server.metric("switchyard_delivery_delivered_total", "hooks") == 1,
             what="delivery after retries")
    assert sink.message_ids() == ids * 3  # two 503s, then the 200
    assert server.metric("switchyard_delivery_retried_total", "hooks") == 2
    assert server.metric("switchyard_delivery_dead_lettered_total", "hooks") == 0
    assert server.dlq_list() == []


def test_400_dead_letters_then_list_and_redrive(make_delivery_server, sinks):
    sink = sinks(answer=always(400, b'{"error":"bad payload"}'))
    server = make_delivery_server([webhook("hooks", sink.url())])
    ids = post_tracks(server, 3)
    wait_for(lambda: server.metric("switchyard_delivery_dead_lettered_total", "hooks") == 3,
             what="3 dead letters")
    assert len(sink.requests()) == 3  # rejected: not retried
    letters = server.dlq_list(destination="hooks")
    assert sorted(d["event"]["messageId"] for d in letters) == sorted(ids)
    for d in letters:
        assert d["destination"] == "hooks" and d["reason"] == "http 400"
        assert d["attempts"] == 1 and d["source"] == SOURCE
        assert d["lastResponse"] == {"status": 400, "body": '{"error":"bad payload"}'}
    assert server.dlq_list() == letters  # all destinations
    # The receiver is fixed: redrive sends them again and empties the store.
    sink.answer = always(200)
    r = server.cli("dlq", "redrive", "--destination", "hooks")
    assert r.returncode == 0, r.stderr.decode()
    assert json.loads(r.stdout) == {"destination": "hooks", "delivered": 3, "kept": 0, "dropped": 0}
    assert sorted(sink.message_ids()[3:]) == sorted(ids)
    assert server.dlq_list() == []


NUMBERS = ('{"price":9.99,"count":1e5,"big":12345678901234567890123,"neg":-0.0,'
           '"list":[1.50,2E+3,-7]}')


def test_dead_letters_and_their_redrive_carry_the_stored_number_text(make_delivery_server, sinks):
    """Issue 18: the dead letter and the redriven request carry the event's bytes as the log
    stored them. The DLQ used to re-serialize the event: 9.99 became 9.99E0, 1e5 1E5 and the
    23-digit integer a double, in `dlq list` and in what redrive sent."""
    sink = sinks(answer=always(400))
    server = make_delivery_server([webhook("hooks", sink.url())])
    mid = new_id()
    raw = ('{"userId":"u","event":"Order","messageId":"' + mid + '","properties":' + NUMBERS +
           '}').encode()
    assert server.post("/v1/track", raw=raw).status == 200
    wait_for(lambda: server.metric("switchyard_delivery_dead_lettered_total", "hooks") == 1,
             what="dead letter")
    assert NUMBERS.encode() in sink.requests()[0].body  # what the log stored, as first sent
    listed = server.cli("dlq", "list", "--destination", "hooks")
    assert listed.returncode == 0, listed.stderr.decode()
    assert NUMBERS.encode() in listed.stdout, listed.stdout[:500]
    sink.answer = always(200)
    r = server.cli("dlq", "redrive", "--destination", "hooks")
    assert r.returncode == 0, r.stderr.decode()
    assert NUMBERS.encode() in sink.requests()[1].body, sink.requests()[1].body[:500]


def test_integrations_object_and_filters_route(make_delivery_server, sinks):
    sink = sinks()
    dest = webhook("hooks", sink.url())
    dest["filters"] = {"drop_events": ["Debug Ping"], "drop_properties": ["password"]}
    server = make_delivery_server([dest])
    off, on, by_type, ping, kept = (new_id() for _ in range(5))
    batch = [
        {"type": "track", "userId": "u", "event": "A", "messageId": off,
         "integrations": {"All": False}},
        {"type": "track", "userId": "u", "event": "A", "messageId": on,
         "integrations": {"All": False, "hooks": True}},
        {"type": "track", "userId": "u", "event": "A", "messageId": by_type,
         "integrations": {"All": False, "Webhooks": True}},
        {"type": "track", "userId": "u", "event": "Debug Ping", "messageId": ping},
        {"type": "track", "userId": "u", "event": "A", "messageId": kept,
         "properties": {"password": "hunter2", "plan": "pro"}},
    ]
    assert server.post("/v1/batch", {"batch": batch}).status == 200
    wait_for(lambda: server.metric("switchyard_delivery_skipped_total", "hooks") == 2,
             what="2 skipped")
    wait_for(lambda: len(sink.requests()) == 3, what="3 deliveries")
    assert sorted(sink.message_ids()) == sorted([on, by_type, kept])
    [k] = [e for e in sink.events() if e["messageId"] == kept]
    assert k["properties"] == {"plan": "pro"}


def test_loopback_is_refused_without_allow_private_network(make_delivery_server, sinks):
    sink = sinks()
    dest = webhook("hooks", sink.url())
    dest["allow_private_network"] = False
    server = make_delivery_server([dest])
    post_tracks(server, 1)
    wait_for(lambda: server.metric("switchyard_delivery_dead_lettered_total", "hooks") == 1,
             what="dead letter")
    assert sink.requests() == []
    [letter] = server.dlq_list()
    assert "private network" in letter["reason"]


def test_guarded_destination_never_reuses_an_allowed_destinations_connection(
        make_delivery_server, sinks):
    """Issue 18 (SSRF): a guarded destination pointing at the same host:port as one with
    allow_private_network: true must not ride the keep-alive connection the other opened —
    neither by the same name nor by another spelling of 127.0.0.1 (http://2130706433:port)."""
    sink = sinks()
    one_at_a_time = {"max_events": 1, "max_wait": "1ms"}
    open_dest = webhook("open", sink.url("/open"))
    open_dest["batch"] = one_at_a_time
    guarded = webhook("guarded", sink.url("/guarded"))
    guarded["allow_private_network"] = False
    guarded["batch"] = one_at_a_time
    numeric = webhook("numeric", f"http://2130706433:{sink.port}/numeric")
    numeric["allow_private_network"] = False
    numeric["batch"] = one_at_a_time
    server = make_delivery_server([open_dest, guarded, numeric])
    n = 0
    for _ in range(10):  # rounds, so the open destination's connections sit idle in the cache
        post_tracks(server, 4)
        n += 4
        wait_for(lambda: sum(r.path == "/open" for r in sink.requests()) >= n, what="open")
    def final(name: str) -> float:
        return (server.metric("switchyard_delivery_dead_lettered_total", name)
                + server.metric("switchyard_delivery_delivered_total", name))

    for name in ("guarded", "numeric"):
        wait_for(lambda: final(name) == n, what=f"a final outcome for every {name} event")
    leaked = [r.path for r in sink.requests() if r.path != "/open"]
    assert leaked == [], f"{len(leaked)} guarded requests reached 127.0.0.1"
    for name in ("guarded", "numeric"):
        assert server.metric("switchyard_delivery_dead_lettered_total", name) == n
    letters = server.dlq_list()
    assert len([x for x in letters if x["destination"] == "guarded"]) == n
    assert len([x for x in letters if x["destination"] == "numeric"]) == n
    assert all("private network" in x["reason"] for x in letters)


def test_a_failing_destination_does_not_slow_a_healthy_one(make_delivery_server, sinks):
    good = sinks()
    bad = sinks(answer=always(503), delay=0.2)
    server = make_delivery_server([webhook("good", good.url()), webhook("bad", bad.url())])
    ids = post_tracks(server, 500)
    wait_for(lambda: len(good.message_ids()) >= 500, timeout=10, what="healthy delivery")
    assert sorted(good.message_ids()) == sorted(ids)
    wait_for(lambda: server.metrics().get_value("switchyard_consumer_lag_events", cursor="dest.good") == 0,
             what="healthy destination caught up")
    assert server.metric("switchyard_delivery_delivered_total", "bad") == 0
    wait_for(lambda: server.metric("switchyard_delivery_retried_total", "bad") > 0,
             what="bad destination retrying")
    assert server.metrics().get_value("switchyard_consumer_lag_events", cursor="dest.bad") > 0


def test_disabled_destination_keeps_its_place(make_delivery_server, sinks):
    sink = sinks()
    dest = webhook("hooks", sink.url())
    dest["enabled"] = False
    server = make_delivery_server([dest])
    ids = post_tracks(server, 10)
    server.stop()
    assert sink.requests() == []
    server.destinations[0]["enabled"] = True  # re-enabled: resumes where its cursor stopped
    server.start()
    wait_for(lambda: len(sink.message_ids()) >= 10, what="delivery after re-enabling")
    assert sorted(sink.message_ids()) == sorted(ids)


def test_kill9_during_delivery_delivers_everything_at_least_once(make_delivery_server, sinks):
    sink = sinks(delay=0.05)
    dest = webhook("hooks", sink.url())
    dest["batch"] = {"max_events": 10, "max_wait": "1ms"}
    server = make_delivery_server([dest])
    ids = post_tracks(server, 300)
    wait_for(lambda: len(sink.requests()) >= 30, what="delivery under way")
    server.kill()
    got_before = len(sink.message_ids())
    assert got_before < 300, "delivery finished before the kill: the test proves nothing"
    server.start()
    wait_for(lambda: set(ids) <= set(sink.message_ids()), timeout=60,
             what="every event after restart")
    server.stop()
    duplicates = len(sink.message_ids()) - len(set(sink.message_ids()))
    # Bounded by the rounds in flight at the kill (8 × 10 events) plus what was delivered since
    # the last cursor commit (≤ 100 ms; this receiver takes ≤ 80 events per 50 ms: ≤ 160).
    assert duplicates <= 8 * 10 + 160


def test_sighup_reload_adds_disables_and_refuses_a_bad_config(make_delivery_server, sinks):
    a, b = sinks(), sinks()
    server = make_delivery_server([webhook("a", a.url())])
    first = post_tracks(server, 5)
    wait_for(lambda: len(a.message_ids()) >= 5, what="a gets the first events")
    # Add b (a new cursor: it starts at the oldest retained event) and switch a off.
    server.destinations = [dict(webhook("a", a.url()), enabled=False), webhook("b", b.url())]
    server.write_config()
    server.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: len(b.message_ids()) >= 5, what="b started by the reload")
    second = post_tracks(server, 5)
    wait_for(lambda: len(b.message_ids()) >= 10, what="b gets the new events")
    assert sorted(b.message_ids()) == sorted(first + second)
    assert sorted(a.message_ids()) == sorted(first)  # disabled: nothing new
    # A config that fails validation is refused whole: b keeps running, a stays off.
    good_config = server.destinations
    server.destinations = [webhook("a", a.url()), webhook("b", b.url()),
                           {"name": "c", "type": "nosuchtype"}]
    server.write_config()
    server.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload refused" in server.log_text(), what="refusal logged")
    server.destinations = good_config
    third = post_tracks(server, 3)
    wait_for(lambda: len(b.message_ids()) >= 13, what="b still delivering")
    assert sorted(a.message_ids()) == sorted(first)
    # Re-enabling a resumes from its cursor: exactly the events it missed.
    server.destinations = [webhook("a", a.url()), webhook("b", b.url())]
    server.write_config()
    r = server.cli("reload")  # `switchyard reload` signals the pid holding the data_dir lock
    assert r.returncode == 0 and f"pid {server.pid}" in r.stdout.decode(), r
    wait_for(lambda: len(a.message_ids()) >= 13, what="a catches up")
    assert sorted(a.message_ids()) == sorted(first + second + third)
    assert len(b.message_ids()) == 13  # b was unchanged: not restarted, nothing sent twice
    server.stop()


def test_check_config_validates_destination_settings(make_delivery_server, tmp_path):
    server = make_delivery_server([
        {"name": "a", "type": "webhook", "settings": {"url": "ftp://x", "colour": "red"}},
        {"name": "b", "type": "nosuchtype"},
        {"name": "c", "type": "webhook"},
    ], start=False)
    server.write_config()
    r = subprocess.run([server.bin, "check-config", str(server.config_path)],
                       capture_output=True, timeout=60)
    assert r.returncode == 2
    err = r.stderr.decode()
    path = str(server.config_path)
    line = len(server.config_path.read_text().splitlines())  # the one-line destinations list
    assert f"{path}:{line}: destinations[0].settings.url: expected an http:// or https:// URL" in err
    assert f"{path}:{line}: destinations[0].settings.colour: unknown key" in err
    assert f"destinations[1].type: unknown destination type 'nosuchtype'" in err
    assert "destinations[2].settings.url: required key is missing" in err


def test_flaky_destination_retries_then_dead_letters_by_pattern(make_delivery_server):
    server = make_delivery_server([
        {"name": "ok-after-retry", "type": "flaky", "batch": {"max_wait": "1ms"},
         "settings": {"pattern": ["retry", "ok"]}},
        {"name": "rejects", "type": "flaky", "batch": {"max_wait": "1ms"},
         "settings": {"pattern": ["reject"]}},
        {"name": "blackhole", "type": "blackhole"},
    ])
    post_tracks(server, 4)
    wait_for(lambda: server.metric("switchyard_delivery_delivered_total", "ok-after-retry") == 4,
             what="flaky delivered after one retry")
    assert server.metric("switchyard_delivery_retried_total", "ok-after-retry") == 4
    wait_for(lambda: server.metric("switchyard_delivery_dead_lettered_total", "rejects") == 4,
             what="flaky rejects")
    wait_for(lambda: server.metric("switchyard_delivery_delivered_total", "blackhole") == 4,
             what="blackhole")
    assert [d["reason"] for d in server.dlq_list("rejects")] == ["flaky: reject"] * 4
    assert server.dlq_list("ok-after-retry") == []


def test_429_retry_after_is_honoured(make_delivery_server, sinks):
    sink = sinks(answer=lambda n, req: (429, b"slow down", {"Retry-After": "2"}) if n == 0
                 else (200, b"ok", {}))
    server = make_delivery_server([webhook("hooks", sink.url())])
    ids = post_tracks(server, 1)
    wait_for(lambda: len(sink.requests()) >= 2, what="the retry")
    first, second = sink.requests()[:2]
    assert second.at - first.at >= 1.9  # full jitter alone would retry within 1 s
    assert sink.message_ids() == ids * 2


def test_refused_credentials_hold_the_destination_and_show_it(make_delivery_server, sinks):
    # A 401 is the destination's problem, not the events': nothing is dead-lettered, the
    # destination is held (one probe per 30 s at first) and shows unhealthy.
    sink = sinks(answer=always(401, b'{"error":"invalid api key"}'))
    server = make_delivery_server([webhook("hooks", sink.url())])
    post_tracks(server, 3)
    wait_for(lambda: server.metric("switchyard_delivery_credentials_refused", "hooks") == 1,
             what="the destination shown as refused")
    time.sleep(0.3)  # the first round's other requests (one event each) are answered
    first_round = len(sink.requests())
    assert 1 <= first_round <= 3
    post_tracks(server, 3)
    time.sleep(1.5)
    assert len(sink.requests()) == first_round  # held: later events wait for the next probe
    assert server.metric("switchyard_delivery_dead_lettered_total", "hooks") == 0
    assert server.dlq_list("hooks") == []


def test_connection_reset_is_retried(make_delivery_server, sinks):
    sink = sinks(answer=lambda n, req: (0, b"", {}) if n < 2 else (200, b"ok", {}))
    server = make_delivery_server([webhook("hooks", sink.url())])
    ids = post_tracks(server, 1)
    wait_for(lambda: server.metric("switchyard_delivery_delivered_total", "hooks") == 1,
             what="delivery after resets")
    assert sink.message_ids() == ids * 3
    assert server.metric("switchyard_delivery_retried_total", "hooks") == 2


def test_reload_without_a_running_server_fails(make_delivery_server):
    server = make_delivery_server([], start=False)
    server.write_config()
    r = server.cli("reload")
    assert r.returncode == 1 and b"no server has run" in r.stderr, r


def test_segment_destination_forwards_to_another_switchyard(make_delivery_server, make_server):
    receiver = make_server()
    sender = make_delivery_server([{
        "name": "upstream", "type": "segment", "allow_private_network": True,
        "batch": {"max_events": 50, "max_wait": "20ms"},
        "settings": {"write_key": WRITE_KEY_2, "endpoint": f"http://127.0.0.1:{receiver.port}"}}])
    ids = post_tracks(sender, 120, properties={"plan": "pro"})
    wait_for(lambda: sender.metric("switchyard_delivery_delivered_total", "upstream") == 120,
             what="120 forwarded")
    got = receiver.dump(source=SOURCE_2)  # the receiver's source for WRITE_KEY_2
    assert sorted(e["messageId"] for e in got) == sorted(ids)  # messageId kept: receiver dedupes
    assert all(e["properties"] == {"plan": "pro"} and e["event"] == "Signed Up" for e in got)


def test_slack_destination_posts_a_rendered_message(make_delivery_server, sinks):
    sink = sinks(answer=lambda n, req: (429, b"rate_limited", {"Retry-After": "1"}) if n == 0
                 else (200, b"ok", {}))
    server = make_delivery_server([{
        "name": "alerts", "type": "slack", "allow_private_network": True,
        "batch": {"max_wait": "1ms"},
        "settings": {"webhook_url": sink.url("/services/T/B/X"),
                     "template": "{{event}} by {{userId}} (plan {{properties.plan}})"}}])
    post_tracks(server, 1, properties={"plan": "pro"})
    wait_for(lambda: server.metric("switchyard_delivery_delivered_total", "alerts") == 1,
             what="slack message after a 429")
    reqs = sink.requests()
    assert len(reqs) == 2 and reqs[1].at - reqs[0].at >= 0.9
    assert reqs[1].path == "/services/T/B/X"
    assert reqs[1].json() == {"text": "Signed Up by u0 (plan pro)"}


def test_mixpanel_import_contract_and_partial_failure(make_delivery_server, sinks):
    def mixpanel(n, req):
        # The /import contract: strict mode, Basic auth with the secret, a JSON array ≤ 2,000.
        if req.path != "/import?strict=1" or req.headers.get("authorization") != \
                "Basic " + base64.b64encode(b"sekrit:").decode():
            return 401, b'{"error":"bad request line or auth"}', {}
        events = req.json()
        assert isinstance(events, list) and len(events) <= 2000
        failed = [{"index": i, "$insert_id": e["properties"]["$insert_id"], "field": "event",
                   "message": "bad name"}
                  for i, e in enumerate(events) if e["event"] == "Bad"]
        if failed:
            return 400, json.dumps({"code": 400, "failed_records": failed,
                                    "num_records_imported": len(events) - len(failed),
                                    "status": "Bad Request"}).encode(), {}
        return 200, json.dumps({"code": 200, "num_records_imported": len(events),
                                "status": "OK"}).encode(), {}

    sink = sinks(answer=mixpanel)
    server = make_delivery_server([{
        "name": "mp", "type": "mixpanel", "allow_private_network": True,
        "batch": {"max_events": 100, "max_wait": "50ms"},
        "settings": {"api_secret": "sekrit", "endpoint": f"http://127.0.0.1:{sink.port}"}}])
    good = post_tracks(server, 4)
    bad = new_id()
    assert server.post("/v1/track", {"userId": "u9", "event": "Bad", "messageId": bad}).status == 200
    wait_for(lambda: server.metric("switchyard_delivery_delivered_total", "mp") == 4 and
             server.metric("switchyard_delivery_dead_lettered_total", "mp") == 1,
             what="4 imported, 1 rejected")
    imported = {e["properties"]["$insert_id"] for r in sink.requests() for e in r.json()}
    assert set(good) | {bad} == imported
    for r in sink.requests():
        for e in r.json():
            assert e["properties"]["mp_lib"] == "switchyard" and "time" in e["properties"]
    [letter] = server.dlq_list("mp")
    assert letter["event"]["messageId"] == bad
    assert letter["reason"] == "mixpanel rejected event: bad name"
    assert server.metric("switchyard_delivery_retried_total", "mp") == 0  # partial: retry nothing


def test_amplitude_contract_rejects_invalid_events_and_resends_the_rest(make_delivery_server,
                                                                       sinks):
    def amplitude(n, req):
        body = req.json()
        if req.path != "/2/httpapi" or body.get("api_key") != "KEY":
            return 401, b'{"code":401,"error":"Invalid API key"}', {}
        events = body["events"]
        assert 1 <= len(events) <= 2000 and all("insert_id" in e for e in events)
        bad = [i for i, e in enumerate(events) if e["event_type"] == "Bad"]
        if bad:
            return 400, json.dumps({"code": 400, "error": "Invalid field values",
                                    "events_with_invalid_fields": {"event_type": bad}}).encode(), {}
        return 200, json.dumps({"code": 200, "events_ingested": len(events)}).encode(), {}

    sink = sinks(answer=amplitude)
    server = make_delivery_server([{
        "name": "amp", "type": "amplitude", "allow_private_network": True,
        "batch": {"max_events": 100, "max_wait": "50ms"},
        "settings": {"api_key": "KEY", "endpoint": f"http://127.0.0.1:{sink.port}"}}])
    bad = new_id()
    batch = [{"type": "track", "userId": "user-1", "event": "Good", "messageId": new_id()}
             for _ in range(3)]
    batch.insert(1, {"type": "track", "userId": "user-1", "event": "Bad", "messageId": bad})
    assert server.post("/v1/batch", {"batch": batch}).status == 200
    wait_for(lambda: server.metric("switchyard_delivery_delivered_total", "amp") == 3,
             what="the valid events, resent without the invalid one")
    assert server.metric("switchyard_delivery_dead_lettered_total", "amp") == 1
    [letter] = server.dlq_list("amp")
    assert letter["event"]["messageId"] == bad
    assert letter["reason"] == "amplitude: invalid event_type"
    accepted = [r.json()["events"] for r in sink.requests()
                if all(e["event_type"] != "Bad" for e in r.json()["events"])]
    ingested = [e["insert_id"] for events in accepted for e in events]
    assert sorted(ingested) == sorted(e["messageId"] for e in batch if e["event"] == "Good")


def test_google_analytics_4_measurement_protocol(make_delivery_server, sinks):
    sink = sinks(answer=always(204, b""))
    server = make_delivery_server([{
        "name": "ga4", "type": "google-analytics-4", "allow_private_network": True,
        "batch": {"max_events": 100, "max_wait": "50ms"},
        "settings": {"measurement_id": "G-E2E", "api_secret": "sec",
                     "endpoint": f"http://127.0.0.1:{sink.port}"}}])
    batch = [{"type": "track", "anonymousId": "client-1", "event": "Product Added",
              "messageId": new_id(), "properties": {"product_id": "p1", "price": 3.5}},
             {"type": "page", "anonymousId": "client-1", "messageId": new_id(),
              "properties": {"url": "https://x.example/", "title": "Home"}}]
    assert server.post("/v1/batch", {"batch": batch}).status == 200
    wait_for(lambda: server.metric("switchyard_delivery_delivered_total", "ga4") == 2,
             what="2 GA4 events")
    [req] = sink.requests()
    assert req.path == "/mp/collect?measurement_id=G-E2E&api_secret=sec"
    body = req.json()
    assert body["client_id"] == "client-1" and len(body["events"]) <= 25
    assert [e["name"] for e in body["events"]] == ["add_to_cart", "page_view"]
    assert body["events"][0]["params"]["items"] == [{"item_id": "p1", "price": 3.5}]
    assert body["events"][1]["params"]["page_location"] == "https://x.example/"
