"""HTTP behaviour real clients depend on: CORS, keep-alive, Expect: 100-continue, the side doors
and the documented metric names."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import subprocess

import pytest

from conftest import METRICS_AUTH, SOURCE, WRITE_KEY, basic, new_id


def preflight(server, path: str, origin: str, headers: str = "authorization,content-type"):
    return server.request("OPTIONS", path, headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": headers})


def test_cors_preflight(server):
    r = preflight(server, "/v1/b", "https://shop.example")
    assert r.status == 204, r
    assert r.header("access-control-allow-origin") in ("*", "https://shop.example"), r.headers
    methods = [m.strip().upper() for m in r.header("access-control-allow-methods").split(",")]
    assert "POST" in methods, r.headers
    allowed = {h.strip().lower() for h in r.header("access-control-allow-headers").split(",")}
    assert {"authorization", "content-type"} <= allowed, r.headers
    for path in ("/v1/t", "/v1/batch", "/v1/track"):
        assert preflight(server, path, "https://shop.example").status == 204
    # The actual POST from that origin is readable by the page too.
    r = server.post("/v1/t", {"userId": "u", "event": "E", "writeKey": WRITE_KEY}, write_key=None,
                    content_type="text/plain", headers={"Origin": "https://shop.example"})
    assert r.status == 200, r
    assert r.header("access-control-allow-origin") in ("*", "https://shop.example"), r.headers
    # ... and so is a refusal (the browser library reads its status).
    r = server.post("/v1/t", {"userId": "u", "writeKey": WRITE_KEY}, write_key=None,
                    content_type="text/plain", headers={"Origin": "https://shop.example"})
    assert r.status == 400, r
    assert r.header("access-control-allow-origin") in ("*", "https://shop.example"), r.headers


def test_cors_restricted_origins(make_server):
    server = make_server(ingest={"cors_origins": ["https://shop.example"]})
    r = preflight(server, "/v1/b", "https://shop.example")
    assert r.status == 204
    assert r.header("access-control-allow-origin") == "https://shop.example", r.headers
    assert "origin" in (r.header("vary") or "").lower(), r.headers
    r = preflight(server, "/v1/b", "https://evil.example")
    assert r.header("access-control-allow-origin") is None, r.headers
    r = server.post("/v1/track", {"userId": "u", "event": "E"},
                    headers={"Origin": "https://evil.example"})
    assert r.status == 200 and r.header("access-control-allow-origin") is None, r.headers


def test_keep_alive(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    ids = [new_id() for _ in range(6)]
    first_sock = None
    try:
        for i, mid in enumerate(ids):
            body = json.dumps({"userId": "u", "event": "KA", "messageId": mid})
            # One bad request in the middle must not cost the connection either.
            if i == 3:
                conn.request("POST", "/v1/track", json.dumps({"userId": "u"}),
                             {"Authorization": basic(WRITE_KEY)})
                r = conn.getresponse()
                assert r.status == 400 and not r.will_close
                r.read()
            conn.request("POST", "/v1/track", body, {"Content-Type": "application/json",
                                                     "Authorization": basic(WRITE_KEY)})
            r = conn.getresponse()
            assert r.status == 200, r.read()
            assert json.loads(r.read()) == {"success": True}
            assert not r.will_close, r.getheaders()
            if first_sock is None:
                first_sock = conn.sock
            assert conn.sock is first_sock, "the server closed a keep-alive connection"
        conn.request("GET", "/healthz")
        r = conn.getresponse()
        assert r.status == 200 and r.read() and conn.sock is first_sock
    finally:
        conn.close()
    assert sorted(e["messageId"] for e in server.dump()) == sorted(ids)


def read_response(sock: socket.socket) -> tuple[int, dict, bytes, bytes]:
    """Reads one HTTP/1.1 response (Content-Length framed). Returns status, headers, body, rest."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = sock.recv(65536)
        assert d, f"connection closed; got {buf!r}"
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        d = sock.recv(65536)
        assert d, "connection closed mid-body"
        rest += d
    return status, headers, rest[:n], rest[n:]


def test_expect_100_continue(server):
    mid = new_id()
    batch = [{"type": "track", "userId": "u", "event": "Big", "messageId": f"{mid}-{i}",
              "properties": {"pad": "p" * 1000}} for i in range(100)]  # ~110 KB, like curl -d @file
    body = json.dumps({"batch": batch}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall((f"POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      f"Authorization: {basic(WRITE_KEY)}\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n").encode())
        status, _, _, rest = read_response(sock)  # the interim answer, before any body byte
        assert status == 100 and rest == b""
        sock.sendall(body)
        status, headers, payload, _ = read_response(sock)
        assert status == 200 and json.loads(payload) == {"success": True}, payload
    events = server.dump()
    assert sorted(e["messageId"] for e in events) == sorted(b["messageId"] for b in batch)


def test_expect_100_continue_too_large_is_refused_before_the_body(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall((f"POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      f"Authorization: {basic(WRITE_KEY)}\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {600 * 1024}\r\nExpect: 100-continue\r\n\r\n").encode())
        status, _, payload, _ = read_response(sock)
        assert status == 413, payload
        assert json.loads(payload)["error"] == "request_too_large", payload
    assert server.get("/healthz").status == 200


def test_curl_large_body(server, tmp_path):
    """curl itself, asking for 100-continue as it does on its own for large uploads."""
    curl = shutil.which("curl")
    if not curl:
        pytest.fail("curl not found: run scripts/install-deps.sh test")
    mid = new_id()
    f = tmp_path / "batch.json"
    f.write_text(json.dumps({"batch": [
        {"type": "track", "userId": "u", "event": "Curl", "messageId": f"{mid}-{i}",
         "properties": {"pad": "c" * 2000}} for i in range(50)]}))
    p = subprocess.run([curl, "-sS", "-v", "-u", f"{WRITE_KEY}:", "-H",
                        "Content-Type: application/json", "-H",
                        "Expect: 100-continue", "--expect100-timeout", "5", "--data-binary", f"@{f}",
                        "--max-time", "10", f"http://127.0.0.1:{server.port}/v1/batch"],
                       capture_output=True, timeout=20)
    assert p.returncode == 0, p.stderr.decode()[-2000:]
    assert json.loads(p.stdout) == {"success": True}, p.stdout
    assert b"Expect: 100-continue" in p.stderr and b"< HTTP/1.1 100 Continue" in p.stderr
    assert len(server.dump()) == 50


def test_side_doors(server):
    assert server.get("/healthz").status == 200
    assert server.get("/readyz").status == 200
    r = server.get("/nope")
    assert r.status == 404, r
    r = server.get("/v1/track")
    assert r.status == 405, r
    assert "POST" in (r.header("allow") or ""), r.headers
    r = server.post("/v1/track/", {"userId": "u", "event": "Slash"})  # trailing slash accepted
    assert r.status == 200, r
    r = server.post("/v1/track?x=1", {"userId": "u", "event": "Query"})
    assert r.status == 200, r
    assert len(server.dump()) == 2


def test_metrics_names(server):
    mid = new_id()
    assert server.post("/v1/track", {"userId": "u", "event": "M", "messageId": mid}).status == 200
    assert server.post("/v1/track", {"userId": "u", "event": "M", "messageId": mid}).status == 200
    assert server.post("/v1/track", {"userId": "u"}).status == 400
    assert server.post("/v1/b", {"batch": [{"type": "page", "userId": "u"}]}).status == 200
    r = server.request("GET", "/metrics", headers=METRICS_AUTH)
    assert r.status == 200
    assert r.header("content-type").startswith("text/plain"), r.headers
    text = r.body.decode()
    for name, kind in [("switchyard_http_requests_total", "counter"),
                       ("switchyard_ingest_events_accepted_total", "counter"),
                       ("switchyard_ingest_events_rejected_total", "counter"),
                       ("switchyard_ingest_events_duplicate_total", "counter")]:
        assert f"# TYPE {name} {kind}" in text, name
        assert f"# HELP {name} " in text, name
    m = server.metrics()
    assert m.get_value("switchyard_http_requests_total", path="/v1/track", status="200") == 2
    assert m.get_value("switchyard_http_requests_total", path="/v1/track", status="400") == 1
    assert m.get_value("switchyard_http_requests_total", path="/v1/b", status="200") == 1
    assert m.get_value("switchyard_ingest_events_accepted_total", source=SOURCE) == 2
    assert m.get_value("switchyard_ingest_events_rejected_total", reason="missing_event") == 1
    assert m.get_value("switchyard_ingest_events_duplicate_total") == 1


def test_dump_works_while_serving(server):
    """dump reads a read-only snapshot without the data dir lock: next to a running server it
    shows every event acknowledged so far, and creates nothing in the log dir."""
    def dump_live() -> list[dict]:
        r = subprocess.run([server.bin, "dump", "--config", str(server.config_path)],
                           capture_output=True, timeout=30)
        assert r.returncode == 0, r
        return [json.loads(line) for line in r.stdout.decode().splitlines() if line.strip()]

    log_dir = server.data_dir / "log"
    ids = [new_id() for _ in range(5)]
    for mid in ids[:3]:
        assert server.post("/v1/track", {"userId": "u", "event": "Live",
                                         "messageId": mid}).status == 200
    before = set(log_dir.rglob("*"))
    assert before, "the server keeps its log in data_dir/log"
    assert [e["messageId"] for e in dump_live()] == ids[:3]
    for mid in ids[3:]:
        assert server.post("/v1/track", {"userId": "u", "event": "Live",
                                         "messageId": mid}).status == 200
    assert [e["messageId"] for e in dump_live()] == ids
    assert server.get("/healthz").status == 200
    assert set(log_dir.rglob("*")) == before  # dump created no file (cursor, segment, .tmp)
    # The server is unaffected: it still takes events and stops cleanly.
    assert server.post("/v1/track", {"userId": "u", "event": "After"}).status == 200
    assert len(server.dump()) == 6
