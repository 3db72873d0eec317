"""TikTok Events API 2.0 `POST /open_api/v1.3/event/track/`, as its docs describe it: the
`Access-Token` header; `event_source` (web) with `event_source_id` the pixel code; `data` an
array of 1–1,000 events, each with `event`, an integer `event_time` (unix seconds), and `user`
fields `email`/`phone`/`external_id` SHA-256 hex digests. TikTok answers HTTP 200 with
`{"code", "message", "request_id", "data"}` for errors too: 40105 for a wrong token, 40002 for
invalid parameters, 40100 when rate-limited; code 0 is success."""

from __future__ import annotations

import json
import re

ACCESS_TOKEN = "tt-access-token"
PIXEL_CODE = "CPIXEL0001"
PATH = "/open_api/v1.3/event/track/"
MAX_EVENTS = 1000
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def reply(code: int, message: str, status: int = 200, headers: dict | None = None) -> tuple:
    return status, json.dumps({"code": code, "message": message, "request_id": "202401020304",
                               "data": {}}).encode(), headers or {"Content-Type": "application/json"}


def answer(n: int, req) -> tuple:
    if req.method != "POST" or req.path != PATH:
        return reply(40002, "Invalid path", status=404)
    if req.headers.get("access-token") != ACCESS_TOKEN:
        return reply(40105, "Access token is incorrect or has been revoked.")
    try:
        body = json.loads(req.body)
    except ValueError:
        return reply(40002, "Invalid JSON")
    if body.get("event_source") != "web" or body.get("event_source_id") != PIXEL_CODE:
        return reply(40002, "event_source_id: pixel not found")
    data = body.get("data")
    if not isinstance(data, list) or not 1 <= len(data) <= MAX_EVENTS:
        return reply(40002, f"data: must hold 1 to {MAX_EVENTS} events")
    for i, e in enumerate(data):
        if not e.get("event") or not isinstance(e.get("event_time"), int):
            return reply(40002, f"data[{i}]: event and event_time are required")
        for k in ("email", "phone", "external_id"):
            v = (e.get("user") or {}).get(k)
            if v is not None and not (isinstance(v, str) and SHA256.match(v)):
                return reply(40002, f"data[{i}].user.{k}: must be SHA-256 hashed")
        if (e.get("properties") or {}).get("currency") not in (None, "USD", "EUR", "GBP", "JPY"):
            return reply(40002, f"data[{i}].properties.currency: invalid currency")
    return reply(0, "OK")


def events(sink) -> list[dict]:
    return [e for r in sink.requests() if r.path == PATH for e in r.json().get("data", [])]
