"""Contract tests of the dest2 destinations (meta-conversions, tiktok, pinterest, klaviyo,
hubspot, mailchimp) through the real server: events posted to the Tracking API reach a local
stand-in that enforces the vendor's documented contract (tests/e2e/vendors/), mapped and hashed
where the vendor requires it; an event the vendor refuses is dead-lettered with the vendor's
reason; a call the vendor has no concept for is skipped and counted, not dead-lettered; a 429 is
retried after its Retry-After (or the vendor's own rate-limit header); refused credentials (a
401, or the vendor's own way of saying so: Graph code 190, TikTok's code 40105 in a 200) hold the
destination and show it unhealthy, never dead-letter."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from conftest import Server, ServerFactory, new_id
from vendors import hubspot, klaviyo, mailchimp, meta_conversions, pinterest, tiktok
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
    make = ServerFactory(tmp_path, DestServer, "dest2")
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


def counted(server, name: str, delivered: int, dead: int = 0, skipped: int = 0) -> bool:
    return (server.metric("switchyard_delivery_delivered_total", name) == delivered and
            server.metric("switchyard_delivery_dead_lettered_total", name) == dead and
            server.metric("switchyard_delivery_skipped_total", name) == skipped)


def sha256(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


WEB = {"ip": "203.0.113.9", "userAgent": "Mozilla/5.0 (X11)",
       "page": {"url": "https://shop.example/checkout", "referrer": "https://r.example/"},
       "traits": {"email": "  Jane@Example.COM ", "phone": "+1 (555) 123-4567"}}


def refused_credentials_are_held(server, name: str, sink: WebhookSink) -> None:
    """The vendor's answer is classified as refused credentials: the destination shows unhealthy
    and is held (one probe per 30 s at first); nothing is dead-lettered or delivered."""
    wait_for(lambda: server.metric("switchyard_delivery_credentials_refused", name) == 1,
             what="the destination shown as refusing credentials")
    first_round = len(sink.requests())
    assert first_round >= 1
    send(server, [{"type": "track", "userId": "u7", "event": "Later"}])
    time.sleep(1.0)
    assert len(sink.requests()) == first_round  # held: later events wait for the next probe
    assert server.metric("switchyard_delivery_dead_lettered_total", name) == 0
    assert server.metric("switchyard_delivery_delivered_total", name) == 0
    assert server.dlq_list(name) == []


def test_meta_conversions_hashes_user_data_and_dead_letters_what_meta_refuses(make_dest_server,
                                                                             sinks):
    sink = sinks(answer=meta_conversions.answer)
    server = make_dest_server([dest("meta", "meta-conversions", sink.port,
                                    pixel_id=meta_conversions.PIXEL_ID,
                                    access_token=meta_conversions.ACCESS_TOKEN)])
    ids = send(server, [
        {"type": "track", "userId": "u1", "event": "Order Completed", "context": WEB,
         "properties": {"order_id": "o-1", "revenue": 42.5, "currency": "EUR",
                        "products": [{"product_id": "p1", "quantity": 2, "price": 21.25}]}},
        {"type": "page", "anonymousId": "a1", "name": "Checkout", "context": WEB},
        {"type": "identify", "userId": "u1", "traits": {"email": "jane@example.com"}},
    ])
    wait_for(lambda: counted(server, "meta", 2, skipped=1), what="2 sent, identify skipped")
    got = {e["event_name"]: e for e in meta_conversions.events(sink)}
    assert set(got) == {"Purchase", "PageView"}
    purchase = got["Purchase"]
    assert purchase["event_id"] == ids[0]
    assert purchase["user_data"]["em"] == [sha256("jane@example.com")]
    assert purchase["user_data"]["ph"] == [sha256("15551234567")]
    assert purchase["user_data"]["external_id"] == [sha256("u1")]
    assert purchase["custom_data"]["value"] == 42.5
    assert purchase["custom_data"]["content_ids"] == ["p1"]
    assert got["PageView"]["event_source_url"] == "https://shop.example/checkout"
    assert not any(b"Jane@" in r.body or b"jane@" in r.body for r in sink.requests())

    # Meta refuses a bad currency (its whole batch, so it goes alone); Switchyard itself refuses
    # an event more than 7 days older than its arrival, without sending it.
    old = (datetime.now(timezone.utc) - timedelta(days=8)).isoformat().replace("+00:00", "Z")
    bad = send(server, [{"type": "track", "userId": "u2", "event": "Order Completed",
                         "context": WEB, "properties": {"revenue": 5, "currency": "EURO"}}])[0]
    wait_for(lambda: counted(server, "meta", 2, dead=1, skipped=1), what="the bad currency")
    stale = send(server, [{"type": "track", "userId": "u3", "event": "Late", "context": WEB,
                           "timestamp": old}])[0]
    wait_for(lambda: counted(server, "meta", 2, dead=2, skipped=1), what="the stale event")
    letters = {d["event"]["messageId"]: d["reason"] for d in server.dlq_list("meta")}
    assert letters[bad] == ("meta: Invalid parameter: data[0]: custom_data.currency must be a "
                            "3-letter ISO 4217 code (code 100/2804003)")
    assert letters[stale] == "cannot encode: meta: event_time more than 7 days before the event arrived"
    assert server.metric("switchyard_delivery_retried_total", "meta") == 0


def test_meta_conversions_invalid_token_is_held_not_dead_lettered(make_dest_server, sinks):
    sink = sinks(answer=meta_conversions.answer)
    server = make_dest_server([dest("meta", "meta-conversions", sink.port,
                                    pixel_id=meta_conversions.PIXEL_ID, access_token="EAA-revoked",
                                    action_source="system_generated")])
    send(server, [{"type": "track", "userId": "u1", "event": "E"}])
    refused_credentials_are_held(server, "meta", sink)
    assert all(r.json().get("access_token") == "EAA-revoked" for r in sink.requests())


def test_tiktok_classifies_by_the_body_code(make_dest_server, sinks):
    sink = sinks(answer=tiktok.answer)
    server = make_dest_server([dest("tt", "tiktok", sink.port, pixel_code=tiktok.PIXEL_CODE,
                                    access_token=tiktok.ACCESS_TOKEN)])
    ids = send(server, [
        {"type": "track", "userId": "u1", "event": "Product Added", "context": WEB,
         "properties": {"product_id": "p1", "price": 9.5, "currency": "USD"}},
        {"type": "track", "anonymousId": "a1", "event": "Demo Booked"},
        {"type": "page", "anonymousId": "a1", "name": "Home"},
    ])
    wait_for(lambda: counted(server, "tt", 2, skipped=1), what="2 tracked, page skipped")
    got = {e["event"]: e for e in tiktok.events(sink)}
    assert got["AddToCart"]["event_id"] == ids[0]
    assert got["AddToCart"]["user"]["email"] == sha256("jane@example.com")
    assert got["AddToCart"]["user"]["phone"] == sha256("+15551234567")
    assert got["AddToCart"]["properties"]["contents"] == [
        {"content_id": "p1", "price": 9.5}]
    assert got["Demo Booked"]["user"]["external_id"] == sha256("a1")
    # TikTok answers HTTP 200 with code 40002: dead-lettered with TikTok's message.
    bad = send(server, [{"type": "track", "userId": "u2", "event": "Checkout Started",
                         "properties": {"revenue": 3, "currency": "XYZ"}}])[0]
    wait_for(lambda: counted(server, "tt", 2, dead=1, skipped=1), what="the bad currency")
    [letter] = server.dlq_list("tt")
    assert letter["event"]["messageId"] == bad
    assert letter["reason"] == "tiktok: data[0].properties.currency: invalid currency (code 40002)"


def test_tiktok_revoked_token_in_a_200_is_held_not_dead_lettered(make_dest_server, sinks):
    sink = sinks(answer=tiktok.answer)
    server = make_dest_server([dest("tt", "tiktok", sink.port, pixel_code=tiktok.PIXEL_CODE,
                                    access_token="revoked")])
    send(server, [{"type": "track", "userId": "u1", "event": "E"}])
    refused_credentials_are_held(server, "tt", sink)


def test_pinterest_rejects_only_the_events_its_answer_names(make_dest_server, sinks):
    sink = sinks(answer=pinterest.answer)
    server = make_dest_server([dest("pin", "pinterest", sink.port,
                                    ad_account_id=pinterest.AD_ACCOUNT,
                                    access_token=pinterest.TOKEN)])
    batch = [
        {"type": "track", "userId": "u1", "event": "Order Completed", "context": WEB,
         "properties": {"revenue": 42.5, "currency": "EUR"}},
        {"type": "track", "userId": "u2", "event": "Order Completed", "context": WEB,
         "properties": {"revenue": 1, "currency": "XXX"}},
        {"type": "page", "anonymousId": "a1", "context": {k: WEB[k] for k in ("ip", "userAgent", "page")}},
        {"type": "identify", "userId": "u1", "traits": {"email": "jane@example.com"}},
    ]
    ids = send(server, batch)
    wait_for(lambda: counted(server, "pin", 2, dead=1, skipped=1), what="2 in, 1 failed, 1 skipped")
    got = pinterest.events(sink)
    assert {e["event_name"] for e in got} == {"checkout", "page_visit"}
    checkout = next(e for e in got if e["event_id"] == ids[0])
    assert checkout["custom_data"]["value"] == "42.5"
    assert checkout["user_data"]["em"] == [sha256("jane@example.com")]
    [letter] = server.dlq_list("pin")
    assert letter["event"]["messageId"] == ids[1]
    assert letter["reason"] == "pinterest: custom_data.currency is not a valid currency"
    assert server.metric("switchyard_delivery_retried_total", "pin") == 0


def test_klaviyo_profiles_and_events_and_a_429_waits_for_retry_after(make_dest_server, sinks):
    def answer(n, req):
        if n == 0:
            return klaviyo.error(429, "throttled", "Request was throttled.",
                                 "Request was throttled. Expected available in 1 second.",
                                 headers={"Retry-After": "1"})
        return klaviyo.answer(n, req)

    sink = sinks(answer=answer)
    server = make_dest_server([dest("kl", "klaviyo", sink.port, api_key=klaviyo.API_KEY)])
    ids = send(server, [
        {"type": "identify", "userId": "u1",
         "traits": {"email": "jane@example.com", "firstName": "Jane", "plan": "pro"}},
        {"type": "track", "userId": "u1", "event": "Order Completed",
         "context": {"traits": {"email": "jane@example.com"}}, "properties": {"revenue": 42.5}},
        {"type": "screen", "userId": "u1", "name": "Home"},
    ])
    wait_for(lambda: counted(server, "kl", 2, skipped=1), what="profile and event, screen skipped")
    reqs = sink.requests()
    assert reqs[0].at + 0.9 <= max(r.at for r in reqs[1:])  # the 429's Retry-After was honoured
    assert server.metric("switchyard_delivery_retried_total", "kl") == 1
    [profile] = klaviyo.resources(sink, "/api/profile-import")[-1:]
    assert profile["attributes"]["external_id"] == "u1"
    assert profile["attributes"]["first_name"] == "Jane"
    assert profile["attributes"]["properties"] == {"plan": "pro"}
    event = klaviyo.resources(sink, "/api/events")[-1]  # the 429 may have been this one's
    assert event["attributes"]["unique_id"] == ids[1]
    assert event["attributes"]["metric"]["data"]["attributes"]["name"] == "Order Completed"
    assert all(r.headers.get("revision") == "2025-10-15" for r in reqs)
    bad = send(server, [{"type": "identify", "userId": "u2", "traits": {"email": "not-an-email"}}])[0]
    wait_for(lambda: counted(server, "kl", 2, dead=1, skipped=1), what="the bad email")
    [letter] = server.dlq_list("kl")
    assert letter["event"]["messageId"] == bad
    assert letter["reason"] == "klaviyo: Invalid email address (invalid at /data/attributes/email)"


def test_hubspot_upserts_contacts_and_rejects_the_input_a_207_names(make_dest_server, sinks):
    def answer(n, req):
        if n == 0:  # HubSpot's own rate-limit header, no Retry-After
            return hubspot.error(429, "RATE_LIMITS", "You have reached your secondly limit.",
                                 {"X-HubSpot-RateLimit-Interval-Milliseconds": "1000",
                                  "X-HubSpot-RateLimit-Remaining": "0"})
        return hubspot.answer(n, req)

    sink = sinks(answer=answer)
    server = make_dest_server([dest("hs", "hubspot", sink.port, access_token=hubspot.TOKEN,
                                    events={"Order Completed": "pe123_order_completed"})])
    ids = send(server, [
        {"type": "identify", "userId": "u1", "traits": {"email": "jane@example.com",
                                                        "firstName": "Jane"}},
        {"type": "identify", "userId": "u2", "traits": {"email": "bo@nowhere"}},
        {"type": "identify", "userId": "u3", "traits": {"email": "al@example.com",
                                                        "company": {"name": "Acme"}}},
    ])
    wait_for(lambda: counted(server, "hs", 2, dead=1), what="2 upserted, 1 named by the 207")
    reqs = sink.requests()
    assert reqs[1].at - reqs[0].at >= 0.9  # X-HubSpot-RateLimit-Interval-Milliseconds
    assert all(r.path == hubspot.UPSERT for r in reqs)  # the fragment never goes on the wire
    inputs = {i["id"]: i["properties"] for i in reqs[-1].json()["inputs"]}
    assert inputs["jane@example.com"] == {"email": "jane@example.com", "firstname": "Jane"}
    assert inputs["al@example.com"]["company"] == "Acme"
    [letter] = server.dlq_list("hs")
    assert letter["event"]["messageId"] == ids[1]
    assert letter["reason"] == "hubspot: Email address bo@nowhere is invalid (VALIDATION_ERROR)"

    send(server, [
        {"type": "track", "userId": "u1", "event": "Order Completed",
         "context": {"traits": {"email": "jane@example.com"}}, "properties": {"revenue": 42.5}},
        {"type": "track", "userId": "u1", "event": "Not Mapped"},
    ])
    wait_for(lambda: counted(server, "hs", 3, dead=1, skipped=1), what="event sent, other skipped")
    [sent] = [r.json() for r in sink.requests() if r.path == hubspot.SEND]
    assert sent["eventName"] == "pe123_order_completed" and sent["email"] == "jane@example.com"
    assert sent["properties"] == {"revenue": "42.5"}


def test_mailchimp_members_events_and_errors(make_dest_server, sinks):
    mailchimp.reset()
    sink = sinks(answer=mailchimp.answer)
    # The member must exist before its events: per_user ordering sends the identify first.
    server = make_dest_server([{**dest("mc", "mailchimp", sink.port, api_key=mailchimp.API_KEY,
                                       list_id=mailchimp.LIST_ID), "ordering": "per_user"}])
    ids = send(server, [
        {"type": "identify", "userId": "u1",
         "traits": {"email": "Jane@Example.com", "firstName": "Jane", "lastName": "Doe"}},
        {"type": "track", "userId": "u1", "event": "Order Completed",
         "context": {"traits": {"email": "jane@example.com"}}, "properties": {"total": 42.5}},
        {"type": "group", "userId": "u1", "groupId": "g1"},
    ])
    wait_for(lambda: counted(server, "mc", 2, skipped=1), what="member and event, group skipped")
    digest = hashlib.md5(b"jane@example.com").hexdigest()
    assert mailchimp.members[digest]["merge_fields"] == {"FNAME": "Jane", "LNAME": "Doe"}
    assert mailchimp.members[digest]["status_if_new"] == "pending"
    [put] = [r for r in sink.requests() if r.method == "PUT"]
    assert put.path == f"/3.0/lists/{mailchimp.LIST_ID}/members/{digest}"
    [event] = [r.json() for r in sink.requests() if r.path.endswith("/events")]
    assert event["name"] == "Order_Completed" and event["properties"] == {"total": "42.5"}
    # A track for an address that is no member: Mailchimp's 404 problem document.
    stranger = send(server, [{"type": "track", "userId": "u9", "event": "Viewed",
                              "properties": {"email": "stranger@example.com"}}])[0]
    wait_for(lambda: counted(server, "mc", 2, dead=1, skipped=1), what="the 404")
    [letter] = server.dlq_list("mc")
    assert letter["event"]["messageId"] == stranger
    assert letter["reason"] == ("mailchimp: Resource Not Found: The requested resource could not "
                                "be found.")
    assert ids[0] not in {d["event"]["messageId"] for d in server.dlq_list("mc")}


def test_mailchimp_invalid_key_is_held_not_dead_lettered(make_dest_server, sinks):
    sink = sinks(answer=mailchimp.answer)
    server = make_dest_server([dest("mc", "mailchimp", sink.port, api_key="wrong-us6",
                                    list_id=mailchimp.LIST_ID)])
    send(server, [{"type": "identify", "userId": "u1", "traits": {"email": "jane@example.com"}}])
    refused_credentials_are_held(server, "mc", sink)


@pytest.mark.parametrize("type_, limit", [("tiktok", tiktok.MAX_EVENTS), ("hubspot", hubspot.MAX_INPUTS)])
def test_batches_never_cross_the_vendors_per_request_limit(make_dest_server, sinks, type_, limit):
    # `batch.max_events` above the vendor's limit is capped by the type's limits: limit + 1
    # events go as two requests, each within what the stand-in accepts.
    vendor = {"tiktok": tiktok, "hubspot": hubspot}[type_]
    settings = ({"pixel_code": tiktok.PIXEL_CODE, "access_token": tiktok.ACCESS_TOKEN}
                if type_ == "tiktok" else {"access_token": hubspot.TOKEN})
    sink = sinks(answer=vendor.answer)
    d = dest("big", type_, sink.port, **settings)
    d["batch"] = {"max_events": 5000, "max_wait": "500ms"}
    server = make_dest_server([d])
    msg = ({"type": "track", "event": "Product Added"} if type_ == "tiktok" else
           {"type": "identify"})
    batch = [{**msg, "userId": f"u{i}", "traits": {"email": f"u{i}@example.com"}}
             for i in range(limit + 1)]
    send(server, batch)
    wait_for(lambda: counted(server, "big", limit + 1), what=f"{limit + 1} delivered")
    sizes = [len(r.json().get("data") or r.json().get("inputs")) for r in sink.requests()]
    assert sum(sizes) == limit + 1 and max(sizes) <= limit and len(sizes) >= 2
