"""The real Segment client libraries, pointed at Switchyard, get every event stored exactly once
with the library's own context and the server's enrichment.

- @segment/analytics-node (npm, tests/e2e/node/send.js): Basic auth, /v1/batch.
- segment-analytics-python (PyPI): writeKey in the body, /v1/batch, plain and gzip.
- analytics-next style raw requests: /v1/t /v1/i /v1/p /v1/s /v1/g /v1/a and /v1/b with the
  writeKey in a text/plain body and no Authorization header.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import E2E, SOURCE, SOURCE_2, WRITE_KEY, WRITE_KEY_2, new_id

ISO_MS = "%Y-%m-%dT%H:%M:%S.%fZ"


def parse_iso(s: str) -> datetime:
    assert s.endswith("Z") and len(s) == 24, f"not ISO-8601 with ms and Z: {s!r}"
    return datetime.strptime(s, ISO_MS).replace(tzinfo=timezone.utc)


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime(ISO_MS)[:-4] + "Z"


def assert_enriched(e: dict, before: datetime, after: datetime) -> None:
    """The server's additions: messageId, receivedAt within the test's window, timestamp, type,
    context.ip from the connection, no writeKey."""
    assert isinstance(e["messageId"], str) and e["messageId"], e
    received = parse_iso(e["receivedAt"])
    assert before - timedelta(seconds=1) <= received <= after + timedelta(seconds=1), e
    parse_iso(e["timestamp"])
    assert e["context"]["ip"] == "127.0.0.1", e
    assert "writeKey" not in e, e
    if "sentAt" in e and "originalTimestamp" in e:  # skew correction, to the millisecond
        skew = parse_iso(e["sentAt"]) - parse_iso(e["originalTimestamp"])
        assert parse_iso(e["timestamp"]) == received - skew, e


def now() -> datetime:
    return datetime.now(timezone.utc)


# ---- @segment/analytics-node ----------------------------------------------------------------


@pytest.fixture(scope="module")
def node_bin() -> str:
    node = shutil.which("node")
    if not node:
        pytest.fail("node not found: run scripts/install-deps.sh test")
    if not (E2E / "node_modules" / "@segment" / "analytics-node").is_dir():
        pytest.fail("@segment/analytics-node missing: run scripts/install-test-deps.sh")
    return node


def run_node(node: str, server, run_id: str, count: int, flush_at: int) -> dict:
    opts = {"host": f"http://127.0.0.1:{server.port}", "writeKey": WRITE_KEY, "runId": run_id,
            "count": count, "flushAt": flush_at}
    p = subprocess.run([node, str(E2E / "node" / "send.js"), json.dumps(opts)], cwd=E2E,
                       capture_output=True, timeout=60)
    assert p.returncode == 0, (p.stdout.decode(), p.stderr.decode())
    out = json.loads(p.stdout.decode().strip().splitlines()[-1])
    assert out["errors"] == [], out
    return out


def test_analytics_node(server, node_bin):
    run_id = new_id("node")
    before = now()
    out = run_node(node_bin, server, run_id, count=4, flush_at=5)  # 28 events, several batches
    after = now()
    sent = out["sent"]
    assert len(sent) == 28
    m = server.metrics()
    assert m.get_value("switchyard_ingest_events_accepted_total", source=SOURCE) == 28
    assert m.get_value("switchyard_http_requests_total", path="/v1/batch", status="200") >= 6

    events = server.dump(source=SOURCE)
    counts = Counter(e["messageId"] for e in events)
    assert {s["messageId"] for s in sent} == set(counts), (sent, counts)
    assert all(c == 1 for c in counts.values()), counts
    by_id = {e["messageId"]: e for e in events}
    for s in sent:
        e = by_id[s["messageId"]]
        assert e["type"] == s["type"], e
        lib = e["context"]["library"]
        assert lib == {"name": "@segment/analytics-node", "version": out["version"]}, e
        assert_enriched(e, before, after)
        # analytics-node stamps timestamp (→ originalTimestamp) and sentAt on the batch.
        assert "originalTimestamp" in e and "sentAt" in e, e
        seq = (e.get("traits") if s["type"] in ("identify", "group") else e.get("properties"))
        if s["type"] != "alias":
            assert seq["seq"] == s["seq"], e
    track = [by_id[s["messageId"]] for s in sent if s["type"] == "track"]
    assert {t["event"] for t in track} == {"Order Completed", "Viewed"}
    assert all(t.get("userId") or t.get("anonymousId") for t in track)
    page = next(by_id[s["messageId"]] for s in sent if s["type"] == "page")
    assert page["name"] == "Install" and page["properties"]["category"] == "Docs", page
    alias = next(by_id[s["messageId"]] for s in sent if s["type"] == "alias")
    assert alias["previousId"].startswith(run_id) and alias["userId"].startswith(run_id), alias


def test_analytics_node_resend_is_deduped(server, node_bin):
    """analytics-node retries keep their messageId: the same run twice stores it once."""
    run_id = new_id("node")
    first = run_node(node_bin, server, run_id, count=1, flush_at=15)
    second = run_node(node_bin, server, run_id, count=1, flush_at=15)
    assert [s["messageId"] for s in first["sent"]] == [s["messageId"] for s in second["sent"]]
    assert server.metrics().get_value("switchyard_ingest_events_duplicate_total") == 7
    events = server.dump()
    assert sorted(e["messageId"] for e in events) == sorted(s["messageId"] for s in first["sent"])


# ---- segment-analytics-python ---------------------------------------------------------------


def python_events(analytics_like, run_id: str, old_ts: datetime) -> list[tuple[str, str]]:
    """Sends one of each call with known message ids; returns [(messageId, type)]."""
    a = analytics_like
    sent = []

    def mid(kind: str) -> str:
        m = f"{run_id}-py-{len(sent)}"
        sent.append((m, kind))
        return m

    a.identify("py-user", {"email": "py@example.com"}, message_id=mid("identify"))
    a.track("py-user", "Order Completed", {"revenue": 42}, message_id=mid("track"))
    a.track(anonymous_id="py-anon", event="Viewed", timestamp=old_ts, message_id=mid("track"))
    a.page("py-user", "Docs", "Install", {"path": "/install"}, message_id=mid("page"))
    a.screen("py-user", "App", "Home", message_id=mid("screen"))
    a.group("py-user", "py-org", {"plan": "pro"}, message_id=mid("group"))
    a.alias("py-anon", "py-user", message_id=mid("alias"))
    return sent


def check_python_events(events: list[dict], sent, old_ts, before, after, version):
    counts = Counter(e["messageId"] for e in events)
    assert set(counts) == {m for m, _ in sent}, (counts, sent)
    assert all(c == 1 for c in counts.values()), counts
    by_id = {e["messageId"]: e for e in events}
    for m, kind in sent:
        e = by_id[m]
        assert e["type"] == kind, e
        assert e["context"]["library"] == {"name": "analytics-python", "version": version}, e
        assert_enriched(e, before, after)
    viewed = by_id[sent[2][0]]
    # The client's own timestamp is kept as originalTimestamp; the corrected timestamp is
    # receivedAt − (sentAt − originalTimestamp), i.e. about the same instant on a true clock.
    assert parse_iso(viewed["originalTimestamp"]) == parse_iso(iso(old_ts)), viewed
    assert abs(parse_iso(viewed["timestamp"]) - parse_iso(iso(old_ts))) < timedelta(seconds=5)
    assert by_id[sent[4][0]]["name"] == "Home", by_id[sent[4][0]]
    assert by_id[sent[5][0]]["groupId"] == "py-org"
    assert by_id[sent[6][0]]["previousId"] == "py-anon"


def test_analytics_python_module_api(server):
    import segment.analytics as analytics
    from segment.analytics.version import VERSION

    errors = []
    analytics.write_key = WRITE_KEY_2  # goes in the body: this library sends no Basic auth
    analytics.host = f"http://127.0.0.1:{server.port}"
    analytics.on_error = lambda e, batch: errors.append(repr(e))
    analytics.max_retries = 2
    analytics.default_client = None
    run_id = new_id("py")
    old_ts = now() - timedelta(hours=3)
    before = now()
    try:
        sent = python_events(analytics, run_id, old_ts)
        analytics.flush()
    finally:
        analytics.shutdown()
        analytics.default_client = None
    after = now()
    assert errors == []
    events = server.dump(source=SOURCE_2)
    check_python_events(events, sent, old_ts, before, after, VERSION)
    assert all(e["context"]["library"]["name"] == "analytics-python" for e in events)


def test_analytics_python_gzip_client(server):
    from segment.analytics import Client
    from segment.analytics.version import VERSION

    errors = []
    client = Client(WRITE_KEY, host=f"http://127.0.0.1:{server.port}", gzip=True,
                    on_error=lambda e, batch: errors.append(repr(e)), max_retries=2,
                    upload_size=3)
    run_id = new_id("pygz")
    old_ts = now() - timedelta(days=1)
    before = now()
    sent = python_events(client, run_id, old_ts)
    client.flush()
    client.shutdown()
    after = now()
    assert errors == []
    m = server.metrics()
    assert m.get_value("switchyard_ingest_events_accepted_total", source=SOURCE) == 7
    events = server.dump()
    check_python_events(events, sent, old_ts, before, after, VERSION)


def test_analytics_python_sync_mode_concurrent(server):
    """Several threads, sync_mode (one request per call, answer checked by the library)."""
    from segment.analytics import Client

    errors = []
    client = Client(WRITE_KEY, host=f"http://127.0.0.1:{server.port}", sync_mode=True,
                    on_error=lambda e, batch: errors.append(repr(e)), max_retries=0)
    run_id = new_id("pysync")
    ids = [[f"{run_id}-{t}-{i}" for i in range(10)] for t in range(4)]

    def work(t):
        for m in ids[t]:
            client.track(f"user-{t}", "Clicked", {"t": t}, message_id=m)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    events = server.dump()
    assert sorted(e["messageId"] for e in events) == sorted(m for row in ids for m in row)


# ---- analytics-next style raw requests ------------------------------------------------------


def test_analytics_next_style_single_calls(server):
    """writeKey in a text/plain body (no preflight), sentAt and _metadata, one path per type."""
    run_id = new_id("ajs")
    sent_at = now() + timedelta(hours=1)  # the browser's clock runs an hour fast
    ts = sent_at - timedelta(seconds=5)   # the event happened 5 s before sending
    calls = {
        "/v1/t": ("track", {"event": "Added To Cart", "properties": {"sku": "A1"}}),
        "/v1/i": ("identify", {"traits": {"name": "Ada"}}),
        "/v1/p": ("page", {"name": "Home", "properties": {"url": "https://shop.example/"}}),
        "/v1/s": ("screen", {"name": "Cart"}),
        "/v1/g": ("group", {"groupId": "org-1"}),
        "/v1/a": ("alias", {"previousId": "anon-1"}),
    }
    expected = {}
    before = now()
    for path, (kind, fields) in calls.items():
        mid = f"{run_id}-{kind}"
        body = {**fields, "userId": "u-ajs", "anonymousId": "anon-1", "messageId": mid,
                "timestamp": iso(ts), "sentAt": iso(sent_at), "writeKey": WRITE_KEY,
                "context": {"library": {"name": "analytics.js", "version": "next-1.70.0"},
                            "page": {"path": "/"}},
                "_metadata": {"bundled": ["Segment.io"], "unbundled": []}}
        r = server.post(path, raw=json.dumps(body).encode(), write_key=None,
                        content_type="text/plain;charset=UTF-8",
                        headers={"Origin": "https://shop.example"})
        assert r.status == 200 and r.json() == {"success": True}, (path, r)
        assert r.header("access-control-allow-origin") in ("*", "https://shop.example"), r.headers
        expected[mid] = kind
    after = now()
    events = server.dump()
    assert Counter(e["messageId"] for e in events) == Counter(expected.keys())
    for e in events:
        assert e["type"] == expected[e["messageId"]], e
        assert e["context"]["library"]["name"] == "analytics.js", e
        assert e["context"]["page"] == {"path": "/"}, e
        assert_enriched(e, before, after)
        assert e["originalTimestamp"] == iso(ts), e
        # skew-corrected: receivedAt − 5 s, exactly
        assert parse_iso(e["timestamp"]) == parse_iso(e["receivedAt"]) - timedelta(seconds=5), e


def test_analytics_next_style_batch(server):
    """Batching delivery: {batch, writeKey, sentAt} to /v1/b; batch context merged into items."""
    run_id = new_id("ajsb")
    sent_at = now() - timedelta(minutes=10)  # a slow clock
    items = []
    for i, kind in enumerate(["track", "page", "identify"]):
        item = {"type": kind, "anonymousId": "anon-b", "messageId": f"{run_id}-{i}",
                "timestamp": iso(sent_at - timedelta(milliseconds=100 * i))}
        if kind == "track":
            item["event"] = "Scrolled"
            item["context"] = {"page": {"path": "/a"}}
        items.append(item)
    body = {"batch": items, "writeKey": WRITE_KEY, "sentAt": iso(sent_at),
            "context": {"library": {"name": "analytics.js", "version": "next"},
                        "page": {"path": "/batch-default"}}}
    before = now()
    r = server.post("/v1/b", raw=json.dumps(body).encode(), write_key=None,
                    content_type="text/plain")
    after = now()
    assert r.status == 200 and r.json() == {"success": True}, r
    events = server.dump()
    by_id = {e["messageId"]: e for e in events}
    assert sorted(by_id) == sorted(i["messageId"] for i in items) and len(events) == 3
    for i, item in enumerate(items):
        e = by_id[item["messageId"]]
        assert e["type"] == item["type"]
        assert e["context"]["library"]["name"] == "analytics.js", e
        # an item's own context wins over the batch's, key by key
        assert e["context"]["page"]["path"] == ("/a" if item["type"] == "track"
                                                else "/batch-default"), e
        assert e["sentAt"] == iso(sent_at), e
        assert_enriched(e, before, after)
        assert parse_iso(e["timestamp"]) == parse_iso(e["receivedAt"]) - timedelta(
            milliseconds=100 * i), e


def test_analytics_python_does_not_retry_a_refusal(server):
    """segment-analytics-python retries only what is worth retrying: on a 4xx answer it raises
    APIError(status, payload['code'], payload['message']) and gives up. That needs "code" in
    the error body; without it the library takes the answer for a network error and resends
    the refused batch max_retries more times."""
    from segment.analytics import Client

    errors = []
    client = Client(WRITE_KEY, host=f"http://127.0.0.1:{server.port}",
                    on_error=lambda e, batch: errors.append(e), max_retries=2)
    client.track("py-user", "Refused", message_id="m" * 101)  # over 100 chars: rejected
    client.flush()
    client.shutdown()
    m = server.metrics()
    sent = m.get_value("switchyard_http_requests_total", path="/v1/batch", status="400")
    assert len(errors) == 1, errors
    assert type(errors[0]).__name__ == "APIError", repr(errors[0])
    assert errors[0].status == 400 and isinstance(errors[0].code, str) and errors[0].code, \
        vars(errors[0])
    assert sent == 1, f"the refused batch was sent {sent:.0f} times"
    assert server.dump() == []
