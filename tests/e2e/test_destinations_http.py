"""The mapped HTTP destination (type `http`) through the real server: Amplitude and Mixpanel
configured purely as mappings (the same settings files as http_mapped_test's golden checks)
against local stand-ins enforcing their contracts; a custom API with a templated URL and an
HMAC-signed body; a type without a mapping skipped; a bad event dead-lettered with the
receiver's reason; a 429 retried after Retry-After; a 401 marking the destination refused and
holding it (never dead-lettering); config errors naming the key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import ServerFactory, new_id
from test_delivery import DeliveryServer
from webhook_sink import WebhookSink, always, wait_for

TESTDATA = Path(__file__).resolve().parents[2] / "src" / "destinations" / "http_mapped" / "testdata"


@dataclass
class HttpServer(DeliveryServer):
    """A server whose destinations' settings are YAML text (the vendor mapping files)."""

    yaml_destinations: list[tuple[str, str]] = field(default_factory=list)  # (name, settings)

    def write_config(self) -> None:
        super().write_config()
        if not self.yaml_destinations:
            return
        with open(self.config_path, "a") as f:
            f.write("destinations:\n")
            for name, settings in self.yaml_destinations:
                f.write(f"  - name: {name}\n    type: http\n    allow_private_network: true\n"
                        "    batch: {max_events: 100, max_wait: 50ms}\n"
                        "    retry_window: 1h\n    settings:\n")
                for line in settings.splitlines():
                    f.write("      " + line + "\n")


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
    make = ServerFactory(tmp_path, HttpServer, "http")
    yield lambda destinations, start=True: make(start=start, yaml_destinations=destinations)
    make.kill_all()


def vendor(name: str, port: int) -> str:
    return (TESTDATA / f"{name}.yaml").read_text().replace("127.0.0.1:9", f"127.0.0.1:{port}")


def test_amplitude_as_a_mapping_meets_the_http_v2_contract(make_server, sinks):
    def amplitude(n, req):
        # HTTP V2: POST /2/httpapi, {"api_key", "events": [≤ 2,000], "options"}; each event
        # needs event_type and user_id or device_id (and here insert_id, time in ms).
        body = req.json()
        if req.path != "/2/httpapi" or body.get("api_key") != "KEY":
            return 401, b'{"code":401,"error":"Invalid API key"}', {}
        events = body["events"]
        assert 1 <= len(events) <= 2000 and body["options"] == {"min_id_length": 1}
        missing = [i for i, e in enumerate(events)
                   if "event_type" not in e or not (e.get("user_id") or e.get("device_id"))]
        if missing:
            return 400, json.dumps({"code": 400, "error": "Request missing required field",
                                    "events_with_missing_fields": {"event_type": missing}}).encode(), {}
        return 200, json.dumps({"code": 200, "events_ingested": len(events)}).encode(), {}

    sink = sinks(answer=amplitude)
    server = make_server([("amp", vendor("amplitude", sink.port))])
    batch = [{"type": "track", "userId": "u1", "event": "Song Played", "messageId": new_id(),
              "timestamp": "2024-01-02T03:04:05.678Z", "properties": {"genre": "jazz"}},
             {"type": "identify", "userId": "u1", "messageId": new_id(), "traits": {"plan": "pro"}},
             {"type": "page", "anonymousId": "a1", "name": "Pricing", "messageId": new_id()},
             {"type": "group", "userId": "u1", "groupId": "g1", "messageId": new_id()}]
    assert server.post("/v1/batch", {"batch": batch}).status == 200
    wait_for(lambda: server.metric("switchyard_delivery_delivered_total", "amp") == 3,
             what="track, identify and page delivered")
    sent = [e for r in sink.requests() for e in r.json()["events"]]
    by_id = {e["insert_id"]: e for e in sent}
    assert set(by_id) == {e["messageId"] for e in batch[:3]}
    track, ident, page = (by_id[e["messageId"]] for e in batch[:3])
    assert track["event_type"] == "Song Played" and track["time"] == 1704164645678
    assert track["event_properties"] == {"genre": "jazz"} and track["library"] == "switchyard"
    assert ident["event_type"] == "$identify" and ident["user_properties"] == {"$set": {"plan": "pro"}}
    assert page["event_type"] == "Viewed Pricing Page" and page["device_id"] == "a1"
    # group has no mapping: skipped, counted as filtered, never an error.
    wait_for(lambda: server.metric("switchyard_delivery_skipped_total", "amp") == 1,
             what="the group call skipped")
    assert server.metric("switchyard_delivery_dead_lettered_total", "amp") == 0
    assert server.dlq_list("amp") == []


def test_mixpanel_as_a_mapping_meets_the_import_and_engage_contract(make_server, sinks):
    secret = "Basic " + base64.b64encode(b"sekrit:").decode()

    def mixpanel(n, req):
        if req.path == "/import?strict=1":
            if req.headers.get("authorization") != secret:
                return 401, b'{"error":"Unauthorized, invalid project secret"}', {}
            events = req.json()
            assert isinstance(events, list) and 1 <= len(events) <= 2000
            for e in events:
                p = e["properties"]
                assert {"time", "distinct_id", "$insert_id"} <= set(p), e
            return 200, json.dumps({"code": 200, "num_records_imported": len(events),
                                    "status": "OK"}).encode(), {}
        if req.path.split("#")[0] == "/engage":
            assert "authorization" not in req.headers  # /engage authenticates by $token
            updates = req.json()
            assert all(u["$token"] == "tok123" and "$distinct_id" in u for u in updates)
            return 200, b"1", {}
        return 404, b'{"error":"unknown path"}', {}

    sink = sinks(answer=mixpanel)
    server = make_server([("mp", vendor("mixpanel", sink.port))])
    ids = [new_id() for _ in range(3)]
    batch = [{"type": "track", "userId": "u1", "event": "Order Completed", "messageId": ids[0],
              "properties": {"revenue": 9.5}},
             {"type": "identify", "userId": "u1", "messageId": ids[1],
              "traits": {"email": "a@example.com"}},
             {"type": "page", "anonymousId": "a2", "name": "Pricing", "messageId": ids[2]}]
    assert server.post("/v1/batch", {"batch": batch}).status == 200
    wait_for(lambda: server.metric("switchyard_delivery_delivered_total", "mp") == 3,
             what="imports and the profile update")
    imports = [e for r in sink.requests() if r.path.startswith("/import") for e in r.json()]
    assert sorted(e["properties"]["$insert_id"] for e in imports) == sorted([ids[0], ids[2]])
    order = next(e for e in imports if e["event"] == "Order Completed")
    assert order["properties"]["revenue"] == 9.5 and order["properties"]["distinct_id"] == "u1"
    assert any(e["event"] == "Viewed Pricing Page" for e in imports)
    [engage] = [r for r in sink.requests() if r.path.startswith("/engage")]
    assert engage.json() == [{"$token": "tok123", "$distinct_id": "u1",
                              "$set": {"email": "a@example.com"},
                              "$ip": "127.0.0.1"}]  # context.ip, which ingest fills in


CUSTOM = """\
url: http://127.0.0.1:{port}/v1/users/{{{{ userId }}}}/events
headers: {{X-Api-Key: '{{{{ $api_key }}}}'}}
api_key: k-123
auth: hmac
hmac_secret: whsec
hmac_header: X-Hub-Signature
hmac_prefix: sha256=
mappings:
  track:
    body:
      name: '{{{{ event }}}}'
      email_sha256: '{{{{ sha256(lowercase(trim(context.traits.email))) }}}}'
      at: '{{{{ to_unix_seconds(timestamp) }}}}'
      total: '{{{{ default(properties.total, 0) }}}}'
      id: '{{{{ $message_id }}}}'
"""


def test_a_custom_api_gets_templated_urls_signed_bodies_and_dead_letters_with_its_reason(
        make_server, sinks):
    def api(n, req):
        digest = hmac.new(b"whsec", req.body, hashlib.sha256).hexdigest()
        if req.headers.get("x-hub-signature") != "sha256=" + digest or \
                req.headers.get("x-api-key") != "k-123":
            return 401, b'{"error":"bad signature"}', {}
        body = req.json()
        if body["total"] < 0:
            return 422, b'{"error":"total must not be negative"}', {}
        return 201, b"{}", {}

    sink = sinks(answer=api)
    server = make_server([("api", CUSTOM.format(port=sink.port))])
    good, bad = new_id(), new_id()
    batch = [{"type": "track", "userId": "ann/1", "event": "Paid", "messageId": good,
              "timestamp": "2024-01-02T03:04:05Z",
              "context": {"traits": {"email": " Ann@Example.com "}}},
             {"type": "track", "userId": "bob", "event": "Refund", "messageId": bad,
              "properties": {"total": -5}}]
    assert server.post("/v1/batch", {"batch": batch}).status == 200
    wait_for(lambda: server.metric("switchyard_delivery_delivered_total", "api") == 1 and
             server.metric("switchyard_delivery_dead_lettered_total", "api") == 1,
             what="one delivered, one rejected")
    delivered = [r for r in sink.requests() if r.json()["id"] == good]
    assert delivered[0].path == "/v1/users/ann%2F1/events"
    assert delivered[0].json() == {
        "name": "Paid", "email_sha256": hashlib.sha256(b"ann@example.com").hexdigest(),
        "at": 1704164645, "total": 0, "id": good}
    [letter] = server.dlq_list("api")
    assert letter["event"]["messageId"] == bad
    assert letter["reason"] == 'http 422: {"error":"total must not be negative"}'


SIMPLE = "url: http://127.0.0.1:{port}/e\nmappings: {{track: {{body: {{e: '{{{{ event }}}}'}}}}}}\n"


def test_a_429_is_retried_after_retry_after(make_server, sinks):
    def limited(n, req):
        return (429, b'{"error":"rate limited"}', {"Retry-After": "1"}) if n == 0 else \
            (200, b"{}", {})

    sink = sinks(answer=limited)
    server = make_server([("slow", SIMPLE.format(port=sink.port))])
    assert server.post("/v1/track", {"userId": "u", "event": "E", "messageId": new_id()}).status == 200
    wait_for(lambda: server.metric("switchyard_delivery_delivered_total", "slow") == 1,
             what="delivered after the 429", timeout=30)
    first, second = sink.requests()[:2]
    assert second.at - first.at >= 0.9, "retried before Retry-After"
    assert server.metric("switchyard_delivery_dead_lettered_total", "slow") == 0


def test_a_401_marks_the_destination_as_refused_and_holds_it(make_server, sinks):
    sink = sinks(answer=always(401, b'{"error":"invalid token"}'))
    server = make_server([("locked", SIMPLE.format(port=sink.port))])
    for _ in range(3):
        assert server.post("/v1/track", {"userId": "u", "event": "E",
                                         "messageId": new_id()}).status == 200
    wait_for(lambda: server.metric("switchyard_delivery_credentials_refused", "locked") == 1,
             what="the destination shown as refused")
    time.sleep(0.3)  # the first round's other requests (one event each) are answered
    first_round = len(sink.requests())
    assert 1 <= first_round <= 3
    assert server.post("/v1/track", {"userId": "u", "event": "E", "messageId": new_id()}).status == 200
    time.sleep(1.5)
    assert len(sink.requests()) == first_round  # held: no retry per event
    assert server.metric("switchyard_delivery_dead_lettered_total", "locked") == 0
    assert server.dlq_list("locked") == []


def test_check_config_names_the_key_of_a_bad_mapping(make_server, tmp_path):
    server = make_server([("bad", "url: https://api.example.com/x\nmappings:\n  track:\n"
                                  "    body:\n      email: '{{ sha265(context.traits.email) }}'\n"
                                  "      total: '{{ propertes.total }}'\n")], start=False)
    server.write_config()
    r = subprocess.run([server.bin, "check-config", str(server.config_path)], capture_output=True,
                       timeout=60)
    err = r.stderr.decode() + r.stdout.decode()
    assert r.returncode != 0
    assert "destinations[0].settings.mappings.track.body.email: unknown function 'sha265'" in err, err
    assert "destinations[0].settings.mappings.track.body.total: unknown field 'propertes'" in err, err
