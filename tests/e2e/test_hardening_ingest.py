"""Ingest hardening (issue 18), against the real binary: one number model on every path, a body
with tens of thousands of keys costs milliseconds of CPU, and per-source rate limits answer 429
with Retry-After, which a real Segment library honours until everything is stored.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from conftest import SOURCE, SOURCE_2, WRITE_KEY, WRITE_KEY_2, Server, ServerFactory, new_id

NUMBERS = ('"properties":{"a":9.99,"b":123456789012345678901234567890,"c":1E5,"d":-0.0,'
           '"e":18446744073709551616,"f":1.50}')


def raw_dump(server: Server) -> list[str]:
    """Stops the server and returns the stored events as the log holds them (text, not parsed:
    Python's json would turn 1E5 into 100000.0 and read Infinity without complaint)."""
    server.stop()
    r = subprocess.run([server.bin, "dump", "--config", str(server.config_path)],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    return [line for line in r.stdout.decode().splitlines() if line.strip()]


def strict_json(line: str):
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")
    return json.loads(line, parse_constant=refuse)


def test_numbers_are_stored_as_sent_on_every_path(server):
    ids = [new_id("num") for _ in range(4)]
    bodies = [
        # A plain event (the span path).
        ("/v1/track", '{"userId":"u","event":"e","messageId":"%s",%s}' % (ids[0], NUMBERS)),
        # Duplicate keys.
        ("/v1/track", '{"userId":"x","userId":"u","event":"e","messageId":"%s",%s}'
         % (ids[1], NUMBERS)),
        # A batch with batch-level context and integrations, as analytics-go and analytics-java
        # send: this path once rebuilt the event and wrote 9.99 as 9.99E0.
        ("/v1/batch", '{"context":{"library":{"name":"analytics-go","version":"3.3.0"}},'
         '"integrations":{"All":true},"batch":[{"type":"track","userId":"u","event":"e",'
         '"messageId":"%s",%s}]}' % (ids[2], NUMBERS)),
        ("/v1/batch", '{"context":{"library":{"name":"analytics-java"}},"batch":['
         '{"type":"track","userId":"u","event":"e","messageId":"%s",'
         '"context":{"app":{"build":3.10}},%s}]}' % (ids[3], NUMBERS)),
    ]
    for path, body in bodies:
        r = server.post(path, raw=body.encode())
        assert r.status == 200 and r.json() == {"success": True}, r
    lines = raw_dump(server)
    assert len(lines) == 4, lines
    for line in lines:
        assert NUMBERS in line, line
        strict_json(line)
    assert '"build":3.10' in [line for line in lines if ids[3] in line][0]


@pytest.mark.parametrize("number", ["1e400", "-1e400"])
def test_numbers_outside_the_double_range_are_refused_on_every_path(server, number):
    ok_id, bad_id = new_id("ok"), new_id("bad")
    r = server.post("/v1/track", raw=(
        '{"userId":"u","event":"e","properties":{"n":%s}}' % number).encode())
    assert r.status == 400, r
    assert r.json()["rejected"][0]["code"] == "number_out_of_range", r
    r = server.post("/v1/batch", raw=(
        '{"context":{"library":{"name":"analytics-go"}},"batch":['
        '{"type":"track","userId":"u","event":"e","messageId":"%s"},'
        '{"type":"track","userId":"u","event":"e","messageId":"%s","properties":{"n":%s}}]}'
        % (ok_id, bad_id, number)).encode())
    assert r.status == 200, r
    assert [(x["index"], x["code"], x["messageId"]) for x in r.json()["rejected"]] == [
        (1, "number_out_of_range", bad_id)], r
    r = server.post("/v1/batch", raw=(
        '{"context":{"n":%s},"batch":[{"type":"track","userId":"u","event":"e"}]}'
        % number).encode())
    assert r.status == 400 and r.json()["code"] == "number_out_of_range", r
    counted = server.metrics().get_value("switchyard_ingest_events_rejected_total",
                                         reason="number_out_of_range")
    assert counted == 3, counted
    lines = raw_dump(server)
    assert len(lines) == 1 and ok_id in lines[0], lines
    for line in lines:
        assert "Infinity" not in line
        strict_json(line)


def process_cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_body_with_64k_keys_costs_milliseconds(make_server):
    server = make_server(ingest={"max_request_size": "1MB"})
    # ~590 KB: 65,536 members in one event, far over the 32 KB event limit.
    members = ",".join(f'"{i}":0' for i in range(65536))
    body = ('{%s,"userId":"u","event":"e"}' % members).encode()
    server.post("/v1/track", {"userId": "u", "event": "warm-up"})
    cpu_before, t0 = process_cpu_seconds(server.pid), time.monotonic()
    r = server.post("/v1/track", raw=body)
    wall = time.monotonic() - t0
    cpu = process_cpu_seconds(server.pid) - cpu_before
    assert r.status == 400, r
    assert r.json()["rejected"][0]["code"] == "event_too_large", r
    # Quadratic duplicate-key detection before the size check took ~3.6 s of CPU here.
    assert cpu < 0.3, f"{cpu:.3f} s of CPU for one body"
    assert wall < 1.0, f"{wall:.3f} s to answer"


class RateLimitedServer(Server):
    """Source SOURCE limited to 20 events/s with a burst of 20; SOURCE_2 unlimited."""

    rate = 20

    def write_config(self) -> None:
        super().write_config()
        text = self.config_path.read_text()
        line = f"    write_key: {WRITE_KEY}\n"
        assert line in text
        text = text.replace(line, line + f"    rate_limit: {{events_per_second: {self.rate}, "
                                          f"burst: {self.rate}}}\n", 1)
        self.config_path.write_text(text)


@pytest.fixture
def make_limited(tmp_path):
    make = ServerFactory(tmp_path, RateLimitedServer, "limited")
    yield make
    make.kill_all()


def batch(n: int, tag: str) -> dict:
    return {"batch": [{"type": "track", "userId": "u", "event": "e", "messageId": f"{tag}-{i}"}
                      for i in range(n)]}


def test_rate_limit_answers_429_then_admits_after_retry_after(make_limited):
    server = make_limited()
    assert server.post("/v1/batch", batch(20, "a")).status == 200
    r = server.post("/v1/batch", batch(10, "b"))
    assert r.status == 429, r
    assert r.json()["code"] == "rate_limited", r
    wait = int(r.header("retry-after"))
    assert 1 <= wait <= 2, r.headers
    assert r.header("x-ratelimit-reset") == str(wait), r.headers
    # Another source is not limited.
    assert server.post("/v1/batch", batch(30, "c"), write_key=WRITE_KEY_2).status == 200
    m = server.metrics()
    assert m.get_value("switchyard_ingest_events_refused_total", source=SOURCE,
                       reason="rate_limited") == 10, m
    assert m.get_value("switchyard_http_requests_total", path="/v1/batch", status="429") == 1, m
    time.sleep(wait)
    assert server.post("/v1/batch", batch(10, "b")).status == 200
    ids = {e["messageId"] for e in server.dump(source=SOURCE)}
    assert ids == {f"a-{i}" for i in range(20)} | {f"b-{i}" for i in range(10)}


def test_analytics_python_retries_429_until_all_is_stored(make_limited):
    from segment.analytics import Client

    server = make_limited()
    errors = []
    client = Client(WRITE_KEY, host=f"http://127.0.0.1:{server.port}", upload_size=20,
                    on_error=lambda e, b: errors.append(repr(e)), max_retries=8)
    sent = []
    try:
        for i in range(60):
            mid = new_id("py")
            client.track(user_id="u", event="Rate", message_id=mid, properties={"i": i})
            sent.append(mid)
        client.flush()
    finally:
        client.shutdown()
    assert errors == []
    assert server.metrics().get_value("switchyard_ingest_events_refused_total", source=SOURCE,
                                      reason="rate_limited") > 0
    stored = [e["messageId"] for e in server.dump(source=SOURCE)]
    assert sorted(stored) == sorted(sent)
