"""Every way a request can be refused: the status and body, nothing invalid stored, the refusal
counted in /metrics by reason, and the server still healthy afterwards.

Each test gets its own server; `check_after` sends one valid sentinel event, then dumps the log
and asserts that exactly the expected events (and the sentinel) were stored.
"""

from __future__ import annotations

import gzip
import json
import time
import zlib

import pytest

from conftest import SOURCE, WRITE_KEY, new_id


def rejected_metric(server, reason: str) -> float:
    return server.metrics().get_value("switchyard_ingest_events_rejected_total", reason=reason)


def check_after(server, stored: list[str] | tuple = (), reason: str | None = None,
                count: float = 1) -> list[dict]:
    """Metrics count the rejection; /healthz is 200; a valid event still goes through; the log
    holds exactly `stored` plus that sentinel. Returns the dumped events."""
    if reason is not None:
        assert rejected_metric(server, reason) == count, server.metrics()
    assert server.get("/healthz").status == 200
    sentinel = new_id("sentinel")
    r = server.post("/v1/track", {"userId": "u1", "event": "Sentinel", "messageId": sentinel})
    assert r.status == 200 and r.json() == {"success": True}, r
    events = server.dump()
    ids = [e["messageId"] for e in events]
    assert sorted(ids) == sorted([*stored, sentinel]), events
    return events


def assert_error(r, status: int, error: str) -> dict:
    assert r.status == status, r
    assert r.header("content-type", ).startswith("application/json"), r.headers
    body = r.json()
    assert body["success"] is False, body
    assert body["error"] == error, body
    assert isinstance(body.get("message"), str) and body["message"], body
    return body


def assert_all_rejected(r, codes: list[str]) -> dict:
    """400 where every event of the request was invalid: each is named with its code."""
    body = assert_error(r, 400, "all_events_rejected")
    assert [x["index"] for x in body["rejected"]] == list(range(len(codes))), body
    assert [x["code"] for x in body["rejected"]] == codes, body
    for x in body["rejected"]:
        assert isinstance(x["reason"], str) and x["reason"], body
    return body


# ---- request-level refusals ---------------------------------------------------------------


def test_invalid_json(server):
    r = server.post("/v1/track", raw=b'{"userId": "u1", "event": "E",')
    assert_error(r, 400, "invalid_json")
    check_after(server, reason="invalid_json")


@pytest.mark.parametrize("body", [b"[]", b'"hello"', b"42", b"null"])
def test_non_object_body(server, body):
    r = server.post("/v1/track", raw=body)
    assert_error(r, 400, "invalid_json")
    check_after(server, reason="invalid_json")


def test_batch_without_batch_array(server):
    r = server.post("/v1/batch", {"batch": {"type": "track"}})
    assert_error(r, 400, "missing_batch")
    check_after(server, reason="missing_batch")


def test_batch_item_not_an_object(server):
    r = server.post("/v1/batch", {"batch": [1, "x"]})
    assert_all_rejected(r, ["not_an_object", "not_an_object"])
    check_after(server, reason="not_an_object", count=2)


def test_missing_write_key(server):
    r = server.post("/v1/track", {"userId": "u1", "event": "E"}, write_key=None)
    assert_error(r, 401, "missing_write_key")
    check_after(server, reason="missing_write_key")


def test_unknown_write_key(server):
    r = server.post("/v1/track", {"userId": "u1", "event": "E"}, write_key="wk_nope")
    assert_error(r, 401, "unknown_write_key")
    r = server.post("/v1/t", {"userId": "u1", "event": "E", "writeKey": "wk_nope"},
                    write_key=None, content_type="text/plain")
    assert_error(r, 401, "unknown_write_key")
    check_after(server, reason="unknown_write_key", count=2)


def test_event_too_large(server):
    big = {"userId": "u1", "event": "Big", "messageId": new_id(),
           "properties": {"blob": "x" * (33 * 1024)}}
    r = server.post("/v1/track", big)
    body = assert_all_rejected(r, ["event_too_large"])
    assert body["rejected"][0]["messageId"] == big["messageId"], body
    # Just under the limit is accepted: the limit is 32 KB of the event as sent.
    ok = {"userId": "u1", "event": "Fits", "messageId": new_id(),
          "properties": {"blob": "x" * (31 * 1024)}}
    r = server.post("/v1/track", ok)
    assert r.status == 200 and r.json() == {"success": True}, r
    check_after(server, stored=[ok["messageId"]], reason="event_too_large")


def test_event_too_large_inside_batch(server):
    ok_id, big_id = new_id(), new_id()
    r = server.post("/v1/batch", {"batch": [
        {"type": "track", "userId": "u1", "event": "Fine", "messageId": ok_id},
        {"type": "track", "userId": "u1", "event": "Big", "messageId": big_id,
         "properties": {"blob": "y" * (40 * 1024)}},
    ]})
    assert r.status == 200, r
    body = r.json()
    assert body["success"] is False and body["stored"] == 1, body
    assert body["rejected"] == [{"index": 1, "code": "event_too_large",
                                 "reason": body["rejected"][0]["reason"], "messageId": big_id}]
    check_after(server, stored=[ok_id], reason="event_too_large")


@pytest.mark.parametrize("number", ["1e400", "-1e400"])
def test_number_out_of_range(server, number):
    # JSON's grammar allows it; a double cannot hold it. Refused by name, never stored as Infinity.
    mid = new_id()
    r = server.post("/v1/track", raw=(
        '{"userId":"u1","event":"E","messageId":"%s","properties":{"n":%s}}'
        % (mid, number)).encode())
    body = assert_all_rejected(r, ["number_out_of_range"])
    assert body["rejected"][0]["messageId"] == mid, body
    # Integers beyond 64 bits are numbers within range: stored as sent.
    big = new_id()
    r = server.post("/v1/track", raw=(
        '{"userId":"u1","event":"E","messageId":"%s","properties":{"n":123456789012345678901234567890}}'
        % big).encode())
    assert r.status == 200 and r.json() == {"success": True}, r
    check_after(server, stored=[big], reason="number_out_of_range")


def test_number_out_of_range_in_batch_context(server):
    r = server.post("/v1/batch", raw=(
        b'{"context":{"n":1e400},"batch":[{"type":"track","userId":"u1","event":"E"}]}'))
    assert_error(r, 400, "number_out_of_range")
    check_after(server, reason="number_out_of_range")


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_request_too_large(server, framing):
    ids = [new_id() for _ in range(40)]
    batch = [{"type": "track", "userId": "u1", "event": "E", "messageId": i,
              "properties": {"pad": "z" * 15000}} for i in ids]  # each event < 32 KB; ~600 KB in all
    raw = json.dumps({"batch": batch}).encode()
    assert len(raw) > 500 * 1024
    if framing == "chunked":  # no Content-Length: the limit must hit while reading the body
        r = server.post("/v1/batch", raw=iter([raw[i:i + 65536] for i in range(0, len(raw), 65536)]),
                        headers={"Transfer-Encoding": "chunked"})
    else:
        r = server.post("/v1/batch", raw=raw)
    assert_error(r, 413, "request_too_large")
    check_after(server, reason="request_too_large")


def test_gzip_bomb(server):
    # 100 MB of zeros inside a JSON string, gzipped to ~100 KB (under the 500 KB wire limit).
    co = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [co.compress(b'{"userId":"u1","event":"Bomb","properties":{"z":"')]
    chunk = b"0" * (1 << 20)
    for _ in range(100):
        parts.append(co.compress(chunk))
    parts.append(co.compress(b'"}}'))
    parts.append(co.flush())
    raw = b"".join(parts)
    assert len(raw) < 500 * 1024
    t = time.monotonic()
    r = server.post("/v1/track", raw=raw, headers={"Content-Encoding": "gzip"})
    elapsed = time.monotonic() - t
    assert_error(r, 413, "request_too_large")
    assert elapsed < 2.0, f"gzip bomb took {elapsed:.2f}s to refuse"
    hwm_mb = server.vm_hwm_kb() / 1024
    assert hwm_mb < 200, f"server peak RSS {hwm_mb:.0f} MB after a gzip bomb"
    check_after(server, reason="request_too_large")


def test_too_many_events(server):
    batch = [{"type": "track", "userId": "u", "event": "E", "messageId": f"m{i}"}
             for i in range(2501)]
    raw = json.dumps({"batch": batch}).encode()
    assert len(raw) < 500 * 1024
    r = server.post("/v1/batch", raw=raw)
    body = assert_error(r, 413, "too_many_events")
    assert "2500" in body["message"], body
    check_after(server, reason="too_many_events")


def test_max_batch_is_accepted(server):
    """2,500 events is the limit itself, not over it."""
    run = new_id("max")
    ids = [f"{run}-{i}" for i in range(2500)]
    r = server.post("/v1/batch", {"batch": [
        {"type": "track", "userId": "u", "event": "E", "messageId": m} for m in ids]})
    assert r.status == 200 and r.json() == {"success": True}, r
    check_after(server, stored=ids)


def test_too_deep(server):
    deep: dict = {"leaf": 1}
    for _ in range(100):
        deep = {"d": deep}
    r = server.post("/v1/track", {"userId": "u1", "event": "Deep", "properties": deep})
    assert_error(r, 400, "too_deep")
    # Nesting well under the cap (64) is fine.
    shallow: dict = {"leaf": 1}
    for _ in range(20):
        shallow = {"d": shallow}
    mid = new_id()
    r = server.post("/v1/track", {"userId": "u1", "event": "Ok", "messageId": mid,
                                  "properties": shallow})
    assert r.status == 200, r
    check_after(server, stored=[mid], reason="too_deep")


def test_unsupported_content_encoding(server):
    r = server.post("/v1/track", {"userId": "u1", "event": "E"}, headers={"Content-Encoding": "br"})
    assert_error(r, 415, "unsupported_encoding")
    check_after(server, reason="unsupported_encoding")


def test_malformed_gzip(server):
    good = gzip.compress(json.dumps({"userId": "u1", "event": "E"}).encode())
    for raw in (b"this is not gzip at all", good[: len(good) // 2]):  # garbage; truncated
        r = server.post("/v1/track", raw=raw, headers={"Content-Encoding": "gzip"})
        assert_error(r, 400, "invalid_body")
    check_after(server, reason="invalid_body", count=2)


def test_gzip_and_deflate_accepted(server):
    a, b = new_id(), new_id()
    r = server.post("/v1/track", {"userId": "u1", "event": "Gz", "messageId": a}, gzip=True)
    assert r.status == 200 and r.json() == {"success": True}, r
    raw = zlib.compress(json.dumps({"userId": "u1", "event": "Df", "messageId": b}).encode())
    r = server.post("/v1/track", raw=raw, headers={"Content-Encoding": "deflate"})
    assert r.status == 200 and r.json() == {"success": True}, r
    check_after(server, stored=[a, b])


# ---- event-level refusals -----------------------------------------------------------------


@pytest.mark.parametrize("path,event,code", [
    ("/v1/track", {"event": "No User"}, "missing_user_id"),
    ("/v1/identify", {"traits": {"a": 1}}, "missing_user_id"),
    ("/v1/track", {"userId": "", "anonymousId": "", "event": "Empty Ids"}, "missing_user_id"),
    ("/v1/track", {"userId": "u1"}, "missing_event"),
    ("/v1/track", {"userId": "u1", "event": ""}, "missing_event"),
    ("/v1/group", {"userId": "u1", "traits": {"plan": "pro"}}, "missing_group_id"),
    ("/v1/alias", {"userId": "u1"}, "missing_previous_id"),
    ("/v1/track", {"userId": "u1", "event": "E", "messageId": "m" * 101}, "message_id_too_long"),
    ("/v1/track", {"userId": "u1", "event": "E", "messageId": 42}, "invalid_message_id"),
    ("/v1/track", {"userId": "u1", "event": "E", "timestamp": "yesterday"}, "invalid_timestamp"),
    ("/v1/track", {"userId": "u1", "event": "E", "properties": [1, 2]}, "invalid_field_type"),
])
def test_invalid_event(server, path, event, code):
    event = {**event}
    r = server.post(path, event)
    body = assert_all_rejected(r, [code])
    if isinstance(event.get("messageId"), str):
        assert body["rejected"][0]["messageId"] == event["messageId"], body
    check_after(server, reason=code)


def test_message_id_of_100_chars_is_accepted(server):
    mid = new_id("m").ljust(100, "x")
    assert len(mid) == 100
    r = server.post("/v1/track", {"userId": "u1", "event": "E", "messageId": mid})
    assert r.status == 200 and r.json() == {"success": True}, r
    check_after(server, stored=[mid])


def test_batch_item_without_type(server):
    r = server.post("/v1/batch", {"batch": [{"userId": "u1", "event": "E"},
                                            {"type": "", "userId": "u1", "event": "E"}]})
    assert_all_rejected(r, ["missing_type", "missing_type"])
    check_after(server, reason="missing_type", count=2)


def test_batch_item_with_unknown_type(server):
    r = server.post("/v1/batch", {"batch": [{"type": "purchase", "userId": "u1"}]})
    assert_all_rejected(r, ["invalid_type"])
    check_after(server, reason="invalid_type")


def test_partial_batch(server):
    ok = [new_id("ok") for _ in range(3)]
    bad_mid = new_id("bad")
    batch = [
        {"type": "track", "userId": "u1", "event": "A", "messageId": ok[0]},   # 0 ok
        {"type": "track", "userId": "u1", "messageId": bad_mid},              # 1 missing_event
        {"type": "identify", "userId": "u1", "messageId": ok[1]},             # 2 ok
        {"type": "group", "userId": "u1"},                                    # 3 missing_group_id
        {"userId": "u1", "event": "No Type"},                                 # 4 missing_type
        {"type": "page", "anonymousId": "a1", "messageId": ok[2]},            # 5 ok
        {"type": "alias", "userId": "u1", "messageId": "m" * 101, "previousId": "p"},  # 6
    ]
    r = server.post("/v1/batch", {"batch": batch})
    assert r.status == 200, r
    body = r.json()
    assert body["success"] is False and body["stored"] == 3 and body["duplicates"] == 0, body
    got = [(x["index"], x["code"]) for x in body["rejected"]]
    assert got == [(1, "missing_event"), (3, "missing_group_id"), (4, "missing_type"),
                   (6, "message_id_too_long")], body
    assert body["rejected"][0]["messageId"] == bad_mid, body
    m = server.metrics()
    for reason in ("missing_event", "missing_group_id", "missing_type", "message_id_too_long"):
        assert m.get_value("switchyard_ingest_events_rejected_total", reason=reason) == 1, reason
    assert m.get_value("switchyard_ingest_events_accepted_total", source=SOURCE) == 3
    events = check_after(server, stored=ok)
    by_id = {e["messageId"]: e for e in events}
    assert [by_id[i]["type"] for i in ok] == ["track", "identify", "page"]


def test_write_key_in_body_never_stored(server):
    mid = new_id()
    r = server.post("/v1/track", {"userId": "u1", "event": "E", "messageId": mid,
                                  "writeKey": WRITE_KEY}, write_key=None)
    assert r.status == 200, r
    events = check_after(server, stored=[mid])
    assert all("writeKey" not in e for e in events), events
