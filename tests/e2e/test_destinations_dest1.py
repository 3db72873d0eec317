"""Contract tests of the dest1 destinations (posthog, braze, heap, iterable, customerio) through
the real server: events posted to the Tracking API reach a local stand-in that enforces the
vendor's documented contract (tests/e2e/vendors/), mapped; a bad event is dead-lettered with the vendor's reason; a call the
vendor has no concept for is skipped and counted, not dead-lettered; a 429 is retried after its
Retry-After / X-RateLimit-Reset; refused credentials hold the destination (shown by
switchyard_delivery_credentials_refused), never dead-letter."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from conftest import Server, ServerFactory, new_id
from vendors import braze, customerio, heap, iterable, posthog
from webhook_sink import WebhookSink, wait_for


@dataclass
class DestServer(Server):
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
def make_dest_server(tmp_path):
    make = ServerFactory(tmp_path, DestServer, "dest1")
    yield lambda destinations: make(destinations=destinations)
    make.kill_all()


def dest(name: str, type_: str, port: int, **settings: Any) -> dict:
    return {"name": name, "type": type_, "allow_private_network": True,
            "batch": {"max_events": 100, "max_wait": "50ms"},
            "settings": {"endpoint": f"http://127.0.0.1:{port}", **settings}}


def send(server: Server, batch: list[dict]) -> list[str]:
    for m in batch:
        m.setdefault("messageId", new_id())
    assert server.post("/v1/batch", {"batch": batch}).status == 200
    return [m["messageId"] for m in batch]


def counted(server, dest_name: str, delivered: int, dead: int = 0, skipped: int = 0) -> bool:
    return (server.metric("switchyard_delivery_delivered_total", dest_name) == delivered and
            server.metric("switchyard_delivery_dead_lettered_total", dest_name) == dead and
            server.metric("switchyard_delivery_skipped_total", dest_name) == skipped)


def test_posthog_every_call_arrives_mapped(make_dest_server, sinks):
    sink = sinks(answer=posthog.answer)
    server = make_dest_server([dest("ph", "posthog", sink.port, api_key=posthog.API_KEY)])
    ids = send(server, [
        {"type": "track", "userId": "u1", "event": "Signed Up", "properties": {"plan": "pro"}},
        {"type": "page", "anonymousId": "a1", "name": "Pricing",
         "context": {"page": {"url": "https://x.example/pricing"}}},
        {"type": "screen", "userId": "u1", "name": "Home"},
        {"type": "identify", "userId": "u1", "anonymousId": "a1", "traits": {"email": "a@x.io"}},
        {"type": "group", "userId": "u1", "groupId": "acme", "traits": {"name": "Acme"}},
        {"type": "alias", "userId": "u1", "previousId": "a1"},
    ])
    wait_for(lambda: counted(server, "ph", 6), what="6 events captured")
    got = {e["event"]: e for e in posthog.events(sink)}
    assert set(got) == {"Signed Up", "$pageview", "$screen", "$identify", "$groupidentify",
                        "$create_alias"}
    assert got["Signed Up"]["properties"]["plan"] == "pro"
    assert got["Signed Up"]["distinct_id"] == "u1"
    assert got["$pageview"]["properties"]["$current_url"] == "https://x.example/pricing"
    assert got["$identify"]["properties"]["$set"] == {"email": "a@x.io"}
    assert got["$groupidentify"]["properties"]["$group_key"] == "acme"
    alias = got["$create_alias"]["properties"]
    assert (alias["distinct_id"], alias["alias"], alias["$lib"]) == ("a1", "u1", "switchyard")
    assert alias["$ip"] == "127.0.0.1"  # context.ip, as ingest enriched it
    # messageId is the uuid when it is one; else a stable UUID made from it (never random).
    assert all(posthog.UUID.match(e["uuid"]) for e in got.values())
    assert len({e["uuid"] for e in got.values()}) == len(ids)


def test_posthog_429_is_retried_after_retry_after(make_dest_server, sinks):
    def answer(n, req):
        if n == 0:
            return 429, b'{"type":"throttled_error","code":"throttled","detail":"slow down"}', \
                {"Retry-After": "1"}
        return posthog.answer(n, req)

    sink = sinks(answer=answer)
    server = make_dest_server([dest("ph", "posthog", sink.port, api_key=posthog.API_KEY)])
    send(server, [{"type": "track", "userId": "u1", "event": "E"}])
    wait_for(lambda: counted(server, "ph", 1), what="delivered after the 429")
    reqs = sink.requests()
    assert len(reqs) == 2 and reqs[1].at - reqs[0].at >= 0.9
    assert server.metric("switchyard_delivery_retried_total", "ph") == 1


def test_posthog_refused_key_is_retried_never_dead_lettered(make_dest_server, sinks):
    sink = sinks(answer=posthog.answer)
    server = make_dest_server([dest("ph", "posthog", sink.port, api_key="phc_revoked")])
    send(server, [{"type": "track", "userId": "u1", "event": "E"} for _ in range(3)])
    wait_for(lambda: len(sink.requests()) >= 1 and
             server.metric("switchyard_delivery_retried_total", "ph") >= 3, what="a 401")
    # Refused credentials hold the whole destination and show it (not a per-event retry storm).
    wait_for(lambda: server.metric("switchyard_delivery_credentials_refused", "ph") == 1,
             what="the destination shown as refusing credentials")
    attempts = len(sink.requests())
    time.sleep(1.0)
    assert len(sink.requests()) == attempts  # held: no request in the next second
    assert server.metric("switchyard_delivery_dead_lettered_total", "ph") == 0
    assert server.metric("switchyard_delivery_delivered_total", "ph") == 0
    assert server.dlq_list("ph") == []


def test_braze_maps_skips_and_dead_letters_the_objects_braze_refuses(make_dest_server, sinks):
    sink = sinks(answer=braze.answer)
    server = make_dest_server([dest("bz", "braze", sink.port, api_key=braze.API_KEY)])
    bad = new_id()
    send(server, [
        {"type": "identify", "userId": "u1",
         "traits": {"firstName": "Ada", "email": "ada@x.io", "plan": "pro"}},
        {"type": "track", "userId": "u1", "event": "Signed Up", "properties": {"plan": "pro"}},
        {"type": "track", "anonymousId": "a9", "event": "Browsed"},
        {"type": "track", "userId": "u1", "event": "Order Completed",
         "properties": {"currency": "EUR", "products": [{"product_id": "p1", "price": 9.5},
                                                        {"product_id": "p2", "price": 1}]}},
        {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": bad,
         "properties": {"currency": "EURO", "products": [{"product_id": "p3", "price": 2}]}},
        {"type": "page", "userId": "u1", "name": "Home"},
        {"type": "alias", "userId": "u1", "previousId": "a9"},
    ])
    wait_for(lambda: counted(server, "bz", 4, dead=1, skipped=2),
             what="4 delivered, 1 dead-lettered, page and alias skipped")
    [attrs] = braze.objects(sink, "attributes")
    assert attrs == {"external_id": "u1", "first_name": "Ada", "email": "ada@x.io", "plan": "pro"}
    events = {e["name"]: e for e in braze.objects(sink, "events")}
    assert events["Signed Up"]["external_id"] == "u1"
    assert events["Browsed"]["user_alias"] == {"alias_name": "a9", "alias_label": "anonymous_id"}
    purchases = [p for p in braze.objects(sink, "purchases") if p["currency"] == "EUR"]
    assert sorted(p["product_id"] for p in purchases) == ["p1", "p2"]
    [letter] = server.dlq_list("bz")
    assert letter["event"]["messageId"] == bad
    assert letter["reason"] == \
        "braze rejected purchases[2]: 'currency' must be a valid ISO 4217 currency code"
    assert server.metric("switchyard_delivery_retried_total", "bz") == 0


def test_braze_429_waits_for_the_rate_limit_reset(make_dest_server, sinks):
    def answer(n, req):
        if n == 0:
            return 429, b'{"message":"rate limit exceeded"}', {
                "X-RateLimit-Limit": "250000", "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(int(time.time()) + 2)}
        return braze.answer(n, req)

    sink = sinks(answer=answer)
    server = make_dest_server([dest("bz", "braze", sink.port, api_key=braze.API_KEY)])
    send(server, [{"type": "track", "userId": "u1", "event": "E"}])
    wait_for(lambda: counted(server, "bz", 1), what="delivered after the reset")
    reqs = sink.requests()
    assert len(reqs) == 2 and reqs[1].at - reqs[0].at >= 0.9


def test_braze_refused_key_is_retried_never_dead_lettered(make_dest_server, sinks):
    sink = sinks(answer=braze.answer)
    server = make_dest_server([dest("bz", "braze", sink.port, api_key="revoked")])
    send(server, [{"type": "track", "userId": "u1", "event": "E"}])
    wait_for(lambda: server.metric("switchyard_delivery_retried_total", "bz") >= 1, what="a 401")
    wait_for(lambda: server.metric("switchyard_delivery_credentials_refused", "bz") == 1,
             what="the destination shown as refusing credentials")
    assert server.metric("switchyard_delivery_dead_lettered_total", "bz") == 0
    assert server.dlq_list("bz") == []


def test_heap_tracks_and_sets_properties_skipping_what_heap_cannot_take(make_dest_server, sinks):
    sink = sinks(answer=heap.answer)
    server = make_dest_server([dest("hp", "heap", sink.port, app_id=heap.APP_ID)])
    ids = send(server, [
        {"type": "track", "userId": "u1", "event": "Signed Up",
         "properties": {"plan": "pro", "trial": True, "shipping": {"days": 2}}},
        {"type": "identify", "userId": "u1", "traits": {"email": "a@x.io"}},
        {"type": "track", "anonymousId": "a1", "event": "Browsed"},
        {"type": "page", "userId": "u1", "name": "Home"},
    ])
    wait_for(lambda: counted(server, "hp", 2, skipped=2), what="2 delivered, 2 skipped")
    [t] = heap.items(sink, "/api/track")
    assert t["identity"] == "u1" and t["event"] == "Signed Up"
    assert t["properties"] == {"plan": "pro", "trial": "true", "shipping.days": 2}
    assert t["idempotency_key"] == ids[0]
    [u] = heap.items(sink, "/api/add_user_properties")
    assert u == {"identity": "u1", "properties": {"email": "a@x.io"}}


def test_heap_refused_request_is_dead_lettered_with_heaps_message(make_dest_server, sinks):
    sink = sinks(answer=heap.answer)
    server = make_dest_server([dest("hp", "heap", sink.port, app_id="wrong")])
    [mid] = send(server, [{"type": "track", "userId": "u1", "event": "E"}])
    wait_for(lambda: counted(server, "hp", 0, dead=1), what="dead-lettered")
    [letter] = server.dlq_list("hp")
    assert letter["event"]["messageId"] == mid
    assert letter["reason"] == "heap: Invalid app_id"


def test_iterable_bulk_partial_failure_and_429(make_dest_server, sinks):
    def answer(n, req):
        if n == 0:
            return 429, b'{"msg":"Rate limit exceeded","code":"RateLimitExceeded","params":null}', \
                {"Retry-After": "1"}
        return iterable.answer(n, req)

    sink = sinks(answer=answer)
    server = make_dest_server([dest("it", "iterable", sink.port, api_key=iterable.API_KEY)])
    bad = new_id()
    ids = send(server, [
        {"type": "track", "userId": "u1", "event": "Signed Up", "properties": {"plan": "pro"}},
        {"type": "track", "userId": "u2", "event": "A", "messageId": bad,
         "properties": {"email": "not-an-email"}},
        {"type": "identify", "userId": "u1", "traits": {"email": "a@x.io", "plan": "pro"}},
        {"type": "page", "userId": "u1", "name": "Home"},
    ])
    wait_for(lambda: counted(server, "it", 2, dead=1, skipped=1),
             what="2 delivered, 1 refused by Iterable, the page skipped")
    tracked = {e["id"]: e for e in iterable.items(sink, "/api/events/trackBulk")}
    assert tracked[ids[0]]["eventName"] == "Signed Up"
    assert tracked[ids[0]]["dataFields"] == {"plan": "pro"}
    users = {u["userId"]: u for u in iterable.items(sink, "/api/users/bulkUpdate")}  # a 429'd
    assert list(users) == ["u1"] and users["u1"]["email"] == "a@x.io"  # request came twice
    [letter] = server.dlq_list("it")
    assert letter["event"]["messageId"] == bad
    assert letter["reason"] == "iterable rejected: invalidEmails not-an-email"
    reqs = sink.requests()
    again = [r for r in reqs[1:] if r.path == reqs[0].path]
    assert again and again[0].at - reqs[0].at >= 0.9  # the 429's Retry-After


def test_customerio_v1_calls_arrive_mapped_and_a_refused_event_is_dead_lettered(
        make_dest_server, sinks):
    sink = sinks(answer=customerio.answer)
    server = make_dest_server([dest("cio", "customerio", sink.port, site_id=customerio.SITE_ID,
                                    api_key=customerio.API_KEY)])
    bad = new_id()
    ids = send(server, [
        {"type": "identify", "userId": "u/1", "traits": {"email": "a@x.io"}},
        {"type": "track", "userId": "u/1", "event": "Signed Up", "properties": {"plan": "pro"}},
        {"type": "track", "anonymousId": "a1", "event": "Browsed"},
        {"type": "page", "userId": "u/1", "name": "Pricing",
         "context": {"page": {"url": "https://x.example/pricing"}}},
        {"type": "screen", "userId": "u/1", "name": "Home"},
        {"type": "group", "userId": "u/1", "groupId": "acme"},
        {"type": "page", "userId": "u/1", "messageId": bad, "properties": {"url": ""}},
    ])
    del ids
    wait_for(lambda: counted(server, "cio", 5, dead=1, skipped=1),
             what="5 delivered, the URL-less page dead-lettered, the group skipped")
    got = customerio.calls(sink)
    assert ("PUT", "/api/v1/customers/u/1", {"email": "a@x.io"}) in got
    events = {b["name"]: (m, p, b) for m, p, b in got if p.endswith("events")}
    assert events["Signed Up"][1] == "/api/v1/customers/u/1/events"
    assert events["Signed Up"][2]["data"] == {"plan": "pro"}
    assert events["Browsed"][1] == "/api/v1/events"
    assert events["Browsed"][2]["anonymous_id"] == "a1"
    assert events["https://x.example/pricing"][2]["type"] == "page"
    assert events["Home"][2]["type"] == "screen"
    assert all(customerio.ULID.match(b["id"]) for _, _, b in events.values())
    [letter] = server.dlq_list("cio")
    assert letter["event"]["messageId"] == bad
    assert letter["reason"] == "cannot encode: page without a URL"


def test_customerio_400_is_dead_lettered_and_429_retried_after_retry_after(make_dest_server,
                                                                            sinks):
    throttled = []

    def answer(n, req):
        name = json.loads(req.body).get("name")
        if name == "First" and not throttled:
            throttled.append(n)
            return 429, b'{"meta":{"error":"rate limited"}}', {"Retry-After": "1"}
        if name == "Rejected":
            return 400, b'{"meta":{"error":"event data too large"}}', {}
        return customerio.answer(n, req)

    sink = sinks(answer=answer)
    server = make_dest_server([dest("cio", "customerio", sink.port, site_id=customerio.SITE_ID,
                                    api_key=customerio.API_KEY)])
    [_, bad] = send(server, [{"type": "track", "userId": "u1", "event": "First"},
                             {"type": "track", "userId": "u2", "event": "Rejected"}])
    wait_for(lambda: counted(server, "cio", 1, dead=1), what="1 delivered, 1 refused")
    [letter] = server.dlq_list("cio")
    assert letter["event"]["messageId"] == bad
    assert letter["reason"] == "customer.io: event data too large"
    first = [r for r in sink.requests() if json.loads(r.body)["name"] == "First"]
    assert len(first) == 2 and first[1].at - first[0].at >= 0.9
