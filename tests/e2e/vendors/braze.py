"""Braze `POST /users/track`, as its docs describe it: `Authorization: Bearer <REST API key>`;
a body of `attributes`, `events` and `purchases` arrays of at most 75 objects each; every object
names its user (`external_id`, `user_alias` {alias_name, alias_label} or `braze_id`); events need
`name` and an ISO 8601 `time`; purchases need `product_id`, a 3-letter `currency`, a numeric
`price` and `time`. Fatal errors (401 missing/invalid key, 400 bad request, 429 with
`X-RateLimit-*` headers) as `{"message": …}`; an object that fails validation is a non-fatal
error: 201 `{"message": "success", "errors": [{"type", "input_array", "index"}]}` and the rest
is processed."""

from __future__ import annotations

import json
from datetime import datetime

API_KEY = "braze-rest-key"
MAX_PER_ARRAY = 75
ARRAYS = ("attributes", "events", "purchases")


def _fatal(status: int, message: str, headers: dict | None = None) -> tuple:
    return status, json.dumps({"message": message}).encode(), headers or {}


def _iso(v) -> bool:
    try:
        datetime.fromisoformat(str(v).replace("Z", "+00:00"))
        return True
    except ValueError:
        return False


def _object_error(kind: str, o) -> str | None:
    if not isinstance(o, dict):
        return "object must be a JSON object"
    if not (o.get("external_id") or o.get("braze_id") or
            (isinstance(o.get("user_alias"), dict) and o["user_alias"].get("alias_name") and
             o["user_alias"].get("alias_label"))):
        return "'external_id' or 'braze_id' or 'user_alias' is required"
    if kind == "events":
        if not o.get("name"):
            return "'name' is required"
        if not _iso(o.get("time")):
            return "'time' must be an ISO 8601 time"
    if kind == "purchases":
        if not o.get("product_id"):
            return "'product_id' is required"
        c = o.get("currency")
        if not (isinstance(c, str) and len(c) == 3 and c.isalpha() and c.isupper()):
            return "'currency' must be a valid ISO 4217 currency code"
        if not isinstance(o.get("price"), (int, float)) or isinstance(o.get("price"), bool):
            return "'price' must be a number"
        if not _iso(o.get("time")):
            return "'time' must be an ISO 8601 time"
    return None


def answer(n: int, req) -> tuple:
    if req.method != "POST" or req.path != "/users/track":
        return _fatal(404, "Not Found")
    auth = req.headers.get("authorization", "")
    if not auth.startswith("Bearer "):
        return _fatal(401, "Missing API key")
    if auth != "Bearer " + API_KEY:
        return _fatal(401, "Invalid API Key")
    try:
        body = json.loads(req.body)
    except ValueError:
        return _fatal(400, "Bad Request: invalid JSON")
    if not isinstance(body, dict) or not any(body.get(a) for a in ARRAYS):
        return _fatal(400, "Bad Request: no attributes, events or purchases")
    errors = []
    processed = {}
    for a in ARRAYS:
        objs = body.get(a) or []
        if not isinstance(objs, list):
            return _fatal(400, f"Bad Request: '{a}' must be an array")
        if len(objs) > MAX_PER_ARRAY:
            return _fatal(400, f"Bad Request: '{a}' has more than {MAX_PER_ARRAY} objects")
        ok = 0
        for i, o in enumerate(objs):
            err = _object_error(a, o)
            if err:
                errors.append({"type": err, "input_array": a, "index": i})
            else:
                ok += 1
        processed[f"{a}_processed"] = ok
    doc = {"message": "success", **processed}
    if errors:
        doc["errors"] = errors
    return 201, json.dumps(doc).encode(), {"Content-Type": "application/json"}


def objects(sink, array: str) -> list[dict]:
    """Every object of `array` in requests the stand-in answered without a fatal error."""
    out = []
    for r in sink.requests():
        if r.headers.get("authorization") != "Bearer " + API_KEY:
            continue
        try:
            body = json.loads(r.body)
        except ValueError:
            continue
        out.extend(body.get(array) or [])
    return out
