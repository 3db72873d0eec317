"""The admin API's live view on the real binary (issue 13): GET /api/v1/live streams a source's
received events and a destination's delivery outcomes as Server-Sent Events, hides payloads from
roles without view_payloads, and refuses streams past admin.max_live_streams."""

from __future__ import annotations

import base64
import http.client
import json
import time

import pytest

from test_admin import AdminServer


class LiveStream:
    """One GET /api/v1/live connection, read event by event."""

    def __init__(self, server, query, token):
        self.conn = http.client.HTTPConnection("127.0.0.1", server.admin_port, timeout=10)
        self.conn.request("GET", "/api/v1/live?" + query,
                          headers={"Authorization": "Bearer " + token})
        self.res = self.conn.getresponse()
        self.status = self.res.status
        self.headers = {k.lower(): v for k, v in self.res.getheaders()}

    def next_event(self):
        """(event name, parsed data) of the next event; comments are skipped."""
        name, data = None, None
        while True:
            line = self.res.fp.readline()
            assert line, "the stream ended"
            line = line.decode().rstrip("\n")
            if line.startswith(":"):
                continue
            if line.startswith("event: "):
                name = line[len("event: "):]
            elif line.startswith("data: "):
                data = json.loads(line[len("data: "):])
            elif line == "" and name is not None:
                return name, data

    def wait_for(self, predicate, timeout=15):
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            name, data = self.next_event()
            seen.append((name, data))
            if predicate(name, data):
                return data
        raise AssertionError(f"not seen in {timeout}s: {seen}")

    def close(self):
        self.res.close()  # the response holds the socket too
        self.conn.close()


@pytest.fixture
def server(tmp_path):
    s = AdminServer(tmp_path)
    yield s
    s.stop()


def post_track(server, event, message_id):
    auth = {"Authorization": "Basic " + base64.b64encode(b"wk_admin_e2e:").decode(),
            "Content-Type": "application/json"}
    status, _, body = server.request(
        "POST", "/v1/track",
        {"event": event, "userId": "u1", "messageId": message_id, "properties": {"plan": "pro"}},
        headers=auth, admin=False)
    assert status == 200, body


def test_a_stream_sees_a_posted_event_and_its_delivery_outcome(server):
    server.write_config(extra=["destinations:", "  - name: hole", "    type: blackhole"])
    editor = server.cli("tokens", "create", "ed", "--role", "editor").stdout.strip()
    viewer = server.cli("tokens", "create", "vi", "--role", "viewer").stdout.strip()
    server.start()

    received = LiveStream(server, "source=web", editor)
    delivered = LiveStream(server, "destination=hole", editor)
    watcher = LiveStream(server, "destination=hole", viewer)
    for s in (received, delivered, watcher):
        assert s.status == 200
        assert s.headers["content-type"] == "text/event-stream"
        assert s.headers["cache-control"] == "no-store"
        name, hello = s.next_event()
        assert name == "hello", (name, hello)
        assert hello["max_per_second"] == 20
    assert watcher_hello_payloads(server, viewer) is False

    # Subscriptions start with the stream; the event posted now is seen at both ends.
    post_track(server, "Live Seen", "live-m1")
    r = received.wait_for(lambda n, d: n == "record" and d.get("messageId") == "live-m1")
    assert r["stage"] == "received" and r["source"] == "web" and r["event"] == "Live Seen"
    assert r["payload"]["properties"] == {"plan": "pro"}
    d = delivered.wait_for(lambda n, d: n == "record" and d.get("messageId") == "live-m1")
    assert d["stage"] == "delivered" and d["destination"] == "hole", d
    assert d["payload"]["event"] == "Live Seen"
    # The viewer sees the outcome but no payload.
    v = watcher.wait_for(lambda n, d: n == "record" and d.get("messageId") == "live-m1")
    assert v["stage"] == "delivered" and "payload" not in v, v
    for s in (received, delivered, watcher):
        s.close()


def watcher_hello_payloads(server, token):
    s = LiveStream(server, "source=web", token)
    try:
        name, hello = s.next_event()
        assert name == "hello"
        return hello["payloads"]
    finally:
        s.close()


def test_streams_past_the_cap_are_refused_and_bad_queries_are_400(server):
    server.write_config(extra=["  max_live_streams: 2"])
    token = server.cli("tokens", "create", "vi", "--role", "viewer").stdout.strip()
    server.start()
    auth = {"Authorization": "Bearer " + token}

    open_streams = [LiveStream(server, "source=web", token) for _ in range(2)]
    for s in open_streams:
        assert s.status == 200
        assert s.next_event()[0] == "hello"
    third = LiveStream(server, "source=web", token)
    assert third.status == 503
    assert third.headers["retry-after"] == "5"
    assert json.loads(third.res.read())["error"]["code"] == "too_many_streams"
    third.close()

    # A client that leaves frees its slot within moments.
    open_streams.pop().close()
    open_streams.append(open_when_a_slot_frees(server, token))

    for query, field in (("", "source"), ("source=web&destination=x", "destination")):
        status, _, body = server.request("GET", "/api/v1/live?" + query, headers=auth)
        assert status == 400, body
        assert json.loads(body)["error"]["field"] == field, body
    status, _, body = server.request("GET", "/api/v1/live?source=nope", headers=auth)
    assert status == 404, body
    status, _, body = server.request("GET", "/api/v1/live?source=web")
    assert status == 401, body
    for s in open_streams:
        s.close()
    # The server stops cleanly (exit status 0, within its grace) with a stream open.
    s = open_when_a_slot_frees(server, token)
    server.stop()
    assert s.res.fp.read() is not None  # the stream ends with the server
    s.close()


def open_when_a_slot_frees(server, token, timeout=5):
    deadline = time.monotonic() + timeout
    while True:
        s = LiveStream(server, "source=web", token)
        if s.status == 200:
            return s
        s.close()
        assert time.monotonic() < deadline, "no live stream slot was freed"
        time.sleep(0.1)
