"""Heap's server-side APIs, bulk forms, as its docs (and heap-ruby's validations) describe them:
`POST /api/track` `{"app_id", "events": [{identity, event, timestamp?, properties?,
idempotency_key?}]}` and `POST /api/add_user_properties` `{"app_id", "users": [{identity,
properties}]}`; ≤ 1,000 items a request; identity ≤ 255 characters; event names ≤ 1,024;
properties flat, values numbers or strings ≤ 1,024 characters. Heap validates a request as a
whole: any violation is a 400 with a plain-text message; an unknown app_id likewise. Success: 200
with an empty body."""

from __future__ import annotations

import json

APP_ID = "4242"
MAX_ITEMS = 1000


def _bad(message: str) -> tuple:
    return 400, message.encode(), {"Content-Type": "text/plain"}


def _props_error(props) -> str | None:
    if not isinstance(props, dict):
        return "properties must be an object"
    for k, v in props.items():
        if len(k) > 1024:
            return f"property name {k[:20]}… too long"
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            return f"Invalid property value for key '{k}': must be a number or a string"
        if isinstance(v, str) and len(v) > 1024:
            return f"Invalid property value for key '{k}': too long"
    return None


def answer(n: int, req) -> tuple:
    if req.method != "POST" or req.path not in ("/api/track", "/api/add_user_properties"):
        return 404, b"Not Found", {}
    try:
        body = json.loads(req.body)
    except ValueError:
        return _bad("Invalid JSON")
    if not isinstance(body, dict) or body.get("app_id") != APP_ID:
        return _bad("Invalid app_id")
    key = "events" if req.path == "/api/track" else "users"
    items = body.get(key)
    if not isinstance(items, list) or not items:
        return _bad(f"'{key}' must be a non-empty array")
    if len(items) > MAX_ITEMS:
        return _bad(f"at most {MAX_ITEMS} {key} per request")
    for it in items:
        ident = it.get("identity") if isinstance(it, dict) else None
        if not isinstance(ident, str) or not ident or len(ident) > 255:
            return _bad("Identity field missing or longer than 255 characters")
        if key == "events":
            name = it.get("event")
            if not isinstance(name, str) or not name or len(name) > 1024:
                return _bad("Missing or too long event name")
        err = _props_error(it.get("properties", {}))
        if err:
            return _bad(err)
    return 200, b"", {}


def items(sink, path: str) -> list[dict]:
    key = "events" if path == "/api/track" else "users"
    out = []
    for r in sink.requests():
        if r.path == path:
            out.extend(json.loads(r.body).get(key) or [])
    return out
