"""Delivery fault injection end to end: slow receivers cut by the destination's `timeout:` and
retried, timeouts until the retry window ends in a dead letter, a 413 splitting a batch in
halves (a single event answered 413 is dead-lettered), and Retry-After given as an HTTP date."""

from __future__ import annotations

import email.utils
import time

from conftest import new_id
from test_delivery import make_delivery_server, post_tracks, sinks, webhook  # noqa: F401
from webhook_sink import wait_for


def test_a_slow_response_past_the_timeout_is_cut_and_retried(make_delivery_server, sinks):
    sink = sinks(answer=lambda n, req: (200, b"ok", {}, 4.0) if n == 0 else (200, b"ok", {}))
    dest = dict(webhook("hooks", sink.url()), timeout="1s")
    server = make_delivery_server([dest])
    ids = post_tracks(server, 1)
    wait_for(lambda: server.metric("switchyard_delivery_delivered_total", "hooks") == 1,
             timeout=10, what="delivery after the timed-out attempt")
    first, second = sink.requests()[:2]
    # Cut after 1 s, retried within the first backoff step (≤ 1 s): long before the slow answer.
    assert 0.9 <= second.at - first.at < 3.0
    assert sink.message_ids() == ids * 2
    assert server.metric("switchyard_delivery_retried_total", "hooks") == 1


def test_timeouts_until_the_retry_window_ends_in_a_dead_letter(make_delivery_server, sinks):
    sink = sinks(answer=lambda n, req: (200, b"too late", {}, 3.0))
    dest = dict(webhook("hooks", sink.url()), timeout="300ms", retry_window="2s")
    server = make_delivery_server([dest])
    [mid] = post_tracks(server, 1)
    wait_for(lambda: server.metric("switchyard_delivery_dead_lettered_total", "hooks") == 1,
             timeout=15, what="dead letter after the retry window")
    assert server.metric("switchyard_delivery_delivered_total", "hooks") == 0
    attempts = len(sink.requests())
    assert attempts >= 2  # retried inside the window, each attempt cut by the timeout
    [letter] = server.dlq_list("hooks")
    assert letter["event"]["messageId"] == mid
    assert letter["reason"].startswith("retry window exceeded after")
    assert "timeout" in letter["reason"].lower() or "timed out" in letter["reason"].lower()
    assert letter["attempts"] == attempts


def test_413_splits_the_batch_in_halves_and_a_single_413_is_dead_lettered(make_delivery_server,
                                                                        sinks):
    # The receiver takes at most 2 events per request, and never the event named "Huge".
    def answer(n, req):
        events = req.json()
        if len(events) > 2 or any(e["event"] == "Huge" for e in events):
            return 413, b'{"error":"payload too large"}', {}
        return 200, b"ok", {}

    sink = sinks(answer=answer)
    dest = webhook("hooks", sink.url(), batch="true", max_events="8")
    dest["batch"] = {"max_events": 8, "max_wait": "300ms"}
    server = make_delivery_server([dest])
    ids = post_tracks(server, 8)
    wait_for(lambda: server.metric("switchyard_delivery_delivered_total", "hooks") == 8,
             what="8 delivered after splitting")
    sizes = sorted(len(r.json()) for r in sink.requests())
    assert sizes == [2, 2, 2, 2, 4, 4, 8]
    delivered = [e["messageId"] for r in sink.requests() if len(r.json()) <= 2 for e in r.json()]
    assert sorted(delivered) == sorted(ids)  # each exactly once
    assert server.metric("switchyard_delivery_retried_total", "hooks") == 0

    huge = new_id()
    batch = [{"type": "track", "userId": "u", "event": "Small", "messageId": new_id()},
             {"type": "track", "userId": "u", "event": "Huge", "messageId": huge}]
    assert server.post("/v1/batch", {"batch": batch}).status == 200
    wait_for(lambda: server.metric("switchyard_delivery_dead_lettered_total", "hooks") == 1,
             what="the single oversized event dead-lettered")
    wait_for(lambda: server.metric("switchyard_delivery_delivered_total", "hooks") == 9,
             what="its batch mate delivered")
    [letter] = server.dlq_list("hooks")
    assert letter["event"]["messageId"] == huge and letter["reason"] == "http 413"
    assert letter["lastResponse"]["status"] == 413


def test_retry_after_as_an_http_date_is_honoured(make_delivery_server, sinks):
    def answer(n, req):
        if n == 0:
            now = time.time()
            return 503, b"maintenance", {
                "Date": email.utils.formatdate(now, usegmt=True),
                "Retry-After": email.utils.formatdate(now + 3, usegmt=True)}
        return 200, b"ok", {}

    sink = sinks(answer=answer)
    server = make_delivery_server([webhook("hooks", sink.url())])
    ids = post_tracks(server, 1)
    wait_for(lambda: len(sink.requests()) >= 2, timeout=15, what="the retry")
    first, second = sink.requests()[:2]
    assert second.at - first.at >= 2.8  # 3 s by the server's Date; jitter alone is ≤ 1 s
    assert sink.message_ids() == ids * 2
