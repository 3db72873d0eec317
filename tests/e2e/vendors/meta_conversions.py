"""Meta Conversions API `POST /{version}/{pixel_id}/events`, as its docs describe it: the access
token as the `access_token` parameter; `data` an array of 1–1,000 events, each with
`event_name`, an integer `event_time` in unix seconds no more than 7 days old, an
`action_source` of the documented set, `user_data` with at least one customer parameter where
`em`/`ph`/`external_id`/`fn`/`ln` are SHA-256 hex digests (never plain), `client_user_agent` and
`event_source_url` required for `website` events, and a 3-letter `currency` when custom_data
has one. Errors are Graph API errors `{"error": {"message", "type", "code", "error_subcode",
"fbtrace_id"}}`; one invalid event fails the whole request; an invalid token is code 190 with
HTTP 400 (as Graph does); success is `{"events_received": N, "messages": [], "fbtrace_id"}`."""

from __future__ import annotations

import json
import re
import time

PIXEL_ID = "1234567890"
VERSION = "v24.0"
ACCESS_TOKEN = "EAAB-meta-token"
PATH = f"/{VERSION}/{PIXEL_ID}/events"
MAX_EVENTS = 1000
ACTION_SOURCES = {"website", "app", "email", "phone_call", "chat", "physical_store",
                  "system_generated", "business_messaging", "other"}
SHA256 = re.compile(r"^[0-9a-f]{64}$")
HASHED = ("em", "ph", "external_id", "fn", "ln")


def error(status: int, message: str, code: int, subcode: int | None = None,
          headers: dict | None = None) -> tuple:
    e = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf"}
    if subcode is not None:
        e["error_subcode"] = subcode
    return status, json.dumps({"error": e}).encode(), headers or {}


def _event_problem(i: int, e) -> str | None:
    if not isinstance(e, dict) or not isinstance(e.get("event_name"), str) or not e["event_name"]:
        return f"data[{i}]: event_name is required"
    t = e.get("event_time")
    if not isinstance(t, int) or isinstance(t, bool):
        return f"data[{i}]: event_time must be an integer of unix seconds"
    if t < time.time() - 7 * 86400:
        return f"data[{i}]: event_time is more than 7 days old"
    if e.get("action_source") not in ACTION_SOURCES:
        return f"data[{i}]: invalid action_source"
    user = e.get("user_data")
    if not isinstance(user, dict) or not user:
        return f"data[{i}]: user_data needs at least one customer information parameter"
    for k in HASHED:
        if k not in user:
            continue
        for v in user[k] if isinstance(user[k], list) else [user[k]]:
            if not isinstance(v, str) or not SHA256.match(v):
                return f"data[{i}]: user_data.{k} must be a SHA-256 hash"
    if e["action_source"] == "website" and not (user.get("client_user_agent") and
                                                e.get("event_source_url")):
        return f"data[{i}]: website events need client_user_agent and event_source_url"
    currency = (e.get("custom_data") or {}).get("currency")
    if currency is not None and not (isinstance(currency, str) and re.fullmatch(r"[A-Za-z]{3}", currency)):
        return f"data[{i}]: custom_data.currency must be a 3-letter ISO 4217 code"
    return None


def answer(n: int, req) -> tuple:
    if req.method != "POST" or req.path.split("?")[0] != PATH:
        return error(400, "Unknown path components", 2500)
    try:
        body = json.loads(req.body)
    except ValueError:
        return error(400, "Invalid JSON", 100)
    if not isinstance(body, dict) or body.get("access_token") != ACCESS_TOKEN:
        return error(400, "Invalid OAuth access token - Cannot parse access token", 190)
    data = body.get("data")
    if not isinstance(data, list) or not 1 <= len(data) <= MAX_EVENTS:
        return error(400, "Invalid parameter", 100, 2804001)
    for i, e in enumerate(data):
        problem = _event_problem(i, e)
        if problem:
            return error(400, "Invalid parameter: " + problem, 100, 2804003)
    return 200, json.dumps({"events_received": len(data), "messages": [],
                            "fbtrace_id": "AbCdEf"}).encode(), {"Content-Type": "application/json"}


def events(sink) -> list[dict]:
    return [e for r in sink.requests() if r.path == PATH for e in r.json().get("data", [])]
