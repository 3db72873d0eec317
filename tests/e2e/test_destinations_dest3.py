"""Contract tests of the dest3 HTTP destinations (bigquery, intercom, kinesis) through the real
server: events posted to the Tracking API reach a local stand-in that enforces the vendor's
documented contract (tests/e2e/vendors/), mapped; an event the vendor refuses is dead-lettered
with the vendor's reason; a rate limit is retried; refused credentials hold the destination and
show it unhealthy, never dead-letter. (Kafka, not HTTP, has its own suite against a real broker:
test_destinations_kafka.py.)"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

import pytest

from conftest import Server, ServerFactory, free_port, new_id
from vendors import bigquery, intercom
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
    make = ServerFactory(tmp_path, DestServer, "dest3")
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


def refused_credentials_are_held(server, name: str, sink: WebhookSink) -> None:
    """The destination shows unhealthy and is held; nothing is dead-lettered or delivered."""
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


# ---- bigquery ------------------------------------------------------------------------------

def bq_setup(sinks, tables: dict[str, set[str]]):
    bq = bigquery.BigQuery(tables)
    sink = sinks(answer=bq.answer)
    bq.token_uri = f"http://127.0.0.1:{sink.port}/token"
    return bq, sink


def bq_dest(sink: WebhookSink, bq: bigquery.BigQuery, **settings: Any) -> dict:
    return dest("bq", "bigquery", sink.port, project_id=bigquery.PROJECT,
                dataset_id=bigquery.DATASET,
                service_account_json=bigquery.service_account(bq.token_uri), **settings)


def test_bigquery_inserts_rows_per_event_type_and_dead_letters_an_invalid_row(make_dest_server,
                                                                              sinks):
    bq, sink = bq_setup(sinks, {
        "order_completed": {"event", "event_text", "order_id", "revenue", "context_page_url"},
        "identifies": {"email", "plan"},
        "pages": {"name", "title"},
    })
    server = make_dest_server([bq_dest(sink, bq)])
    ids = send(server, [
        {"type": "track", "userId": "u1", "event": "Order Completed",
         "properties": {"orderId": "o-1", "revenue": 42.5},
         "context": {"page": {"url": "https://shop.example/checkout"}}},
        {"type": "identify", "userId": "u1", "traits": {"email": "a@example.com", "plan": "pro"}},
        {"type": "page", "anonymousId": "a1", "name": "Home", "properties": {"title": "Home"}},
    ])
    wait_for(lambda: counted(server, "bq", 3), what="3 rows inserted")
    # No token yet: each table's call fetched one (at most 3); from now on the cached one serves.
    tokens = bq.token_requests
    assert 1 <= tokens <= 3
    [order] = bq.rows["order_completed"]
    assert order["id"] == ids[0] and order["user_id"] == "u1"
    assert order["order_id"] == "o-1" and order["revenue"] == 42.5
    assert order["event_text"] == "Order Completed"
    assert order["context_page_url"] == "https://shop.example/checkout"
    assert bq.rows["identifies"][0]["plan"] == "pro"
    assert bq.rows["pages"][0]["name"] == "Home"
    # A property the table has no column for: BigQuery fails that row `invalid` and stops the
    # others of its request; the invalid one is dead-lettered, the stopped one retried.
    good, bad = send(server, [
        {"type": "track", "userId": "u2", "event": "Order Completed", "properties": {"revenue": 1}},
        {"type": "track", "userId": "u3", "event": "Order Completed", "properties": {"bogus": 1}},
    ])
    wait_for(lambda: counted(server, "bq", 4, dead=1), what="the stopped row retried")
    [letter] = server.dlq_list("bq")
    assert letter["event"]["messageId"] == bad
    assert letter["reason"] == "bigquery: invalid: no such field: bogus."
    assert [r["id"] for r in bq.rows["order_completed"]] == [ids[0], good]
    assert server.metric("switchyard_delivery_retried_total", "bq") >= 1
    assert bq.token_requests == tokens
    # No such table: the call's events are dead-lettered with BigQuery's message.
    missing = send(server, [{"type": "track", "userId": "u4", "event": "Nope"}])[0]
    wait_for(lambda: counted(server, "bq", 4, dead=2), what="no such table")
    letters = {d["event"]["messageId"]: d["reason"] for d in server.dlq_list("bq")}
    assert letters[missing] == "bigquery: Not found: Table sy-test:analytics.nope"


def test_bigquery_refreshes_a_revoked_token_and_retries_a_rate_limit(make_dest_server, sinks):
    bq, sink = bq_setup(sinks, {"e": {"event", "event_text"}})
    server = make_dest_server([bq_dest(sink, bq)])
    send(server, [{"type": "track", "userId": "u1", "event": "E"}])
    wait_for(lambda: counted(server, "bq", 1), what="the first row")
    assert bq.token_requests == 1
    bq.revoke_tokens()  # the cached token now answers 401: a fresh one is fetched
    send(server, [{"type": "track", "userId": "u1", "event": "E"}])
    wait_for(lambda: counted(server, "bq", 2), what="delivered with a fresh token")
    assert bq.token_requests == 2
    assert server.metric("switchyard_delivery_retried_total", "bq") == 0
    bq.rate_limit_next = 1  # 403 rateLimitExceeded: retried, not refused credentials
    send(server, [{"type": "track", "userId": "u1", "event": "E"}])
    wait_for(lambda: counted(server, "bq", 3), what="delivered after the rate limit", timeout=30)
    assert server.metric("switchyard_delivery_retried_total", "bq") == 1
    assert server.metric("switchyard_delivery_credentials_refused", "bq") == 0


def test_bigquery_a_key_the_token_endpoint_refuses_is_held_not_dead_lettered(make_dest_server,
                                                                             sinks):
    bq, sink = bq_setup(sinks, {"e": {"event", "event_text"}})
    bq.token_uri = "https://oauth2.googleapis.com/token"  # the JWT's aud will not match
    d = bq_dest(sink, bq)
    d["settings"]["service_account_json"] = bigquery.service_account(
        f"http://127.0.0.1:{sink.port}/token")
    server = make_dest_server([d])
    send(server, [{"type": "track", "userId": "u1", "event": "E"}])
    refused_credentials_are_held(server, "bq", sink)
    assert all(r.path == "/token" for r in sink.requests())


# ---- intercom ------------------------------------------------------------------------------

def ic_dest(sink: WebhookSink, token: str = intercom.TOKEN) -> dict:
    d = dest("ic", "intercom", sink.port, access_token=token)
    d["ordering"] = "per_user"  # a user's track waits for their identify's contact
    return d


def test_intercom_contacts_are_searched_then_updated_or_created(make_dest_server, sinks):
    ic = intercom.Intercom()
    sink = sinks(answer=ic.answer)
    server = make_dest_server([ic_dest(sink)])
    send(server, [{"type": "identify", "userId": "u1",
                   "traits": {"email": "ada@example.com", "name": "Ada", "plan": "pro"}}])
    wait_for(lambda: counted(server, "ic", 1), what="the contact created")
    [contact] = ic.contacts.values()
    assert contact["external_id"] == "u1" and contact["role"] == "user"
    assert contact["custom_attributes"] == {"plan": "pro"}
    send(server, [{"type": "identify", "userId": "u1", "traits": {"logins": 3}}])
    wait_for(lambda: counted(server, "ic", 2), what="the contact updated")
    assert len(ic.contacts) == 1  # found by the search, updated with PUT
    assert contact["custom_attributes"] == {"plan": "pro", "logins": 3}
    paths = [(r.method, r.path) for r in sink.requests()]
    assert paths == [("POST", "/contacts/search"), ("POST", "/contacts"),
                     ("POST", "/contacts/search"), ("PUT", f"/contacts/{contact['id']}")]
    assert all(r.headers.get("intercom-version") == "2.11" for r in sink.requests())
    props = {f"p{i}": i for i in range(12)}
    send(server, [
        {"type": "track", "userId": "u1", "event": "Order Completed",
         "timestamp": "2024-05-01T10:00:00Z", "properties": props},
        {"type": "group", "userId": "u1", "groupId": "acme", "traits": {"name": "Acme",
                                                                         "plan": "pro"}},
        {"type": "page", "userId": "u1", "name": "Home"},
    ])
    wait_for(lambda: counted(server, "ic", 4, skipped=1), what="event and company; page skipped")
    [event] = ic.events
    assert event["event_name"] == "Order Completed" and event["user_id"] == "u1"
    assert event["created_at"] == 1714557600
    assert event["metadata"] == {f"p{i}": i for i in range(10)}  # the first ten
    assert ic.companies["acme"]["name"] == "Acme"
    # Intercom's refusals are dead-lettered with its reason.
    unknown_user, bad_attr = send(server, [
        {"type": "track", "userId": "u9", "event": "E"},
        {"type": "identify", "userId": "u2", "traits": {"shoe_size": 44}},
    ])
    wait_for(lambda: counted(server, "ic", 4, dead=2, skipped=1), what="two refusals")
    letters = {d["event"]["messageId"]: d["reason"] for d in server.dlq_list("ic")}
    assert letters == {unknown_user: "intercom: not_found: User Not Found",
                       bad_attr: "intercom: parameter_invalid: Custom attribute 'shoe_size' "
                                 "does not exist"}


def test_intercom_rate_limit_waits_for_the_reset_and_a_bad_token_is_held(make_dest_server,
                                                                         sinks):
    ic = intercom.Intercom()
    ic.rate_limit_next = 1
    ic.rate_limit_reset_in = 2
    sink = sinks(answer=ic.answer)
    server = make_dest_server([ic_dest(sink)])
    send(server, [{"type": "group", "userId": "u1", "groupId": "acme"}])
    wait_for(lambda: counted(server, "ic", 1), what="delivered after the reset", timeout=30)
    first, second = sink.requests()
    assert second.at - first.at >= 0.9  # waited for X-RateLimit-Reset (whole seconds)
    assert server.metric("switchyard_delivery_retried_total", "ic") == 1

    sink2 = sinks(answer=ic.answer)
    server2 = make_dest_server([{**ic_dest(sink2, token="revoked"), "name": "ic2"}])
    send(server2, [{"type": "group", "userId": "u1", "groupId": "acme"}])
    refused_credentials_are_held(server2, "ic2", sink2)


# ---- kinesis, against kinesalite -----------------------------------------------------------
# kinesalite (npm, tests/e2e/package.json; installed by `make test-deps`) implements the
# Kinesis API — stream states, PutRecords validation and limits, shards by partition key hash,
# GetRecords — in memory. It checks that requests carry a SigV4 Authorization header but not the
# signature itself; the signer is checked against AWS's test vectors (src/archive/archive_test.cc)
# and the kinesis unit test's golden request.

KINESALITE = Path(__file__).resolve().parent / "node_modules" / "kinesalite" / "cli.js"


class Kinesalite:
    def __init__(self, tmp: Path):
        assert KINESALITE.exists(), f"{KINESALITE} missing: run `make test-deps`"
        self.port = free_port()
        self.log = open(tmp / "kinesalite.log", "wb")
        self.proc = subprocess.Popen(["node", str(KINESALITE), "--port", str(self.port),
                                      "--createStreamMs", "0", "--shardLimit", "10"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                assert self.proc.poll() is None and time.monotonic() < deadline, "kinesalite"
                time.sleep(0.05)

    def call(self, target: str, body: dict) -> dict:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/", data=json.dumps(body).encode(),
            headers={"Content-Type": "application/x-amz-json-1.1",
                     "X-Amz-Target": f"Kinesis_20131202.{target}",
                     "X-Amz-Date": "20240101T000000Z",
                     "Authorization": "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/"
                                      "kinesis/aws4_request, SignedHeaders=host;x-amz-date, "
                                      "Signature=0"})
        with urllib.request.urlopen(req, timeout=10) as r:
            text = r.read()
        return json.loads(text) if text else {}

    def create_stream(self, name: str, shards: int) -> None:
        self.call("CreateStream", {"StreamName": name, "ShardCount": shards})
        wait_for(lambda: self.call("DescribeStream", {"StreamName": name})
                 ["StreamDescription"]["StreamStatus"] == "ACTIVE", what="stream active")

    def records(self, name: str) -> list[tuple[str, str, dict]]:
        """(shard, partition key, data as JSON) of every record, shard by shard in order."""
        out = []
        shards = self.call("DescribeStream", {"StreamName": name})["StreamDescription"]["Shards"]
        for shard in shards:
            it = self.call("GetShardIterator", {"StreamName": name, "ShardId": shard["ShardId"],
                                                "ShardIteratorType": "TRIM_HORIZON"})["ShardIterator"]
            got = self.call("GetRecords", {"ShardIterator": it, "Limit": 10000})
            for rec in got["Records"]:
                out.append((shard["ShardId"], rec["PartitionKey"],
                            json.loads(base64.b64decode(rec["Data"]))))
        return out

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def kinesalite(tmp_path):
    k = Kinesalite(tmp_path)
    yield k
    k.stop()


def kinesis_dest(k: Kinesalite, stream: str) -> dict:
    return {"name": "kin", "type": "kinesis", "allow_private_network": True,
            "batch": {"max_events": 100, "max_wait": "50ms"},
            "settings": {"stream_name": stream, "region": "us-east-1",
                         "access_key_id": "AKIDEXAMPLE", "secret_access_key": "secret",
                         "endpoint": f"http://127.0.0.1:{k.port}"}}


def test_kinesis_puts_records_partitioned_by_user_and_dead_letters_a_missing_stream(
        make_dest_server, kinesalite):
    kinesalite.create_stream("events", shards=3)
    server = make_dest_server([kinesis_dest(kinesalite, "events")])
    batch = [{"type": "track", "anonymousId": f"user-{i % 4}", "event": "Step",
              "properties": {"n": i}} for i in range(40)]
    batch.append({"type": "identify", "userId": "only-user", "traits": {"plan": "pro"}})
    ids = send(server, batch)
    wait_for(lambda: counted(server, "kin", len(ids)), what="every record put")
    records = kinesalite.records("events")
    assert sorted(r[2]["messageId"] for r in records) == sorted(ids)
    by_key: dict[str, list] = {}
    for shard, key, data in records:
        by_key.setdefault(key, []).append((shard, data))
    for i in range(4):
        recs = by_key[f"user-{i}"]
        assert len({s for s, _ in recs}) == 1  # one shard per user
        ns = [d["properties"]["n"] for _, d in recs]
        assert ns == sorted(ns) and len(ns) == 10
    assert by_key["only-user"][0][1]["traits"] == {"plan": "pro"}
    assert len({shard for shard, _, _ in records}) > 1
    # A stream that does not exist: Kinesis' ResourceNotFoundException, dead-lettered.
    server2 = make_dest_server([{**kinesis_dest(kinesalite, "nope"), "name": "kin2"}])
    [gone] = send(server2, [{"type": "track", "userId": "u1", "event": "E"}])
    wait_for(lambda: counted(server2, "kin2", 0, dead=1), what="the missing stream")
    [letter] = server2.dlq_list("kin2")
    assert letter["event"]["messageId"] == gone
    assert letter["reason"].startswith("kinesis: ResourceNotFoundException: ")
    assert "nope" in letter["reason"]
