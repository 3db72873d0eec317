"""Pinterest API for Conversions `POST /v5/ad_accounts/{id}/events`, as its docs describe it:
`Authorization: Bearer <token>`; `data` an array of 1–1,000 events, each with an `event_name`
of the documented set, an `action_source` (web, app_android, app_ios, offline), an integer
`event_time`, an `event_id`, and `user_data` with `em` (array of SHA-256 digests) or both
`client_ip_address` and `client_user_agent`; custom_data `value` a string. Request-level errors
are `{"code", "message"}` (401 authentication, 400 invalid parameters); a 200 answers each event:
`{"num_events_received", "num_events_processed", "events": [{"status": "processed" | "failed",
"error_message", "warning_message"}]}`."""

from __future__ import annotations

import json
import re

AD_ACCOUNT = "549755885175"
TOKEN = "pina_conversion_token"
PATH = f"/v5/ad_accounts/{AD_ACCOUNT}/events"
MAX_EVENTS = 1000
NAMES = {"add_to_cart", "checkout", "custom", "lead", "page_visit", "search", "signup",
         "view_category", "watch_video"}
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def error(status: int, code: int, message: str) -> tuple:
    return status, json.dumps({"code": code, "message": message}).encode(), \
        {"Content-Type": "application/json"}


def _problem(e) -> str | None:
    if e.get("event_name") not in NAMES:
        return f"event_name '{e.get('event_name')}' is not supported"
    if e.get("action_source") not in ("web", "app_android", "app_ios", "offline"):
        return "action_source is invalid"
    if not isinstance(e.get("event_time"), int) or not e.get("event_id"):
        return "event_time and event_id are required"
    user = e.get("user_data") or {}
    em = user.get("em") or []
    if not all(isinstance(h, str) and SHA256.match(h) for h in em):
        return "user_data.em must be SHA-256 hashed"
    if not em and not (user.get("client_ip_address") and user.get("client_user_agent")):
        return "user_data needs em, or client_ip_address and client_user_agent"
    value = (e.get("custom_data") or {}).get("value")
    if value is not None and not isinstance(value, str):
        return "custom_data.value must be a string"
    if (e.get("custom_data") or {}).get("currency") == "XXX":
        return "custom_data.currency is not a valid currency"
    return None


def answer(n: int, req) -> tuple:
    if req.method != "POST" or req.path != PATH:
        return error(404, 404, "Not found")
    if req.headers.get("authorization") != "Bearer " + TOKEN:
        return error(401, 2, "Authentication failed.")
    try:
        data = json.loads(req.body).get("data")
    except (ValueError, AttributeError):
        return error(400, 1, "Invalid request body")
    if not isinstance(data, list) or not 1 <= len(data) <= MAX_EVENTS:
        return error(400, 1, f"data must hold 1 to {MAX_EVENTS} events")
    answers = []
    for e in data:
        p = _problem(e) if isinstance(e, dict) else "event must be an object"
        answers.append({"status": "failed" if p else "processed", "error_message": p,
                        "warning_message": None})
    return 200, json.dumps({"num_events_received": len(data),
                            "num_events_processed": sum(a["status"] == "processed" for a in answers),
                            "events": answers}).encode(), {"Content-Type": "application/json"}


def events(sink) -> list[dict]:
    return [e for r in sink.requests() if r.path == PATH for e in r.json().get("data", [])]
