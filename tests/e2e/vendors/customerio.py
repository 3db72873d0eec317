"""Customer.io's Track API v1 as its docs describe it: Basic auth `site_id:api_key`;
`PUT /api/v1/customers/{id}` (attributes), `POST /api/v1/customers/{id}/events` and
`POST /api/v1/events` (anonymous: `anonymous_id`) with `{name, data?, timestamp?, id?, type?}`
(`type` event | page | screen; `id` a ULID); a request body ≤ 32 KB. Errors as
`{"meta": {"error": …}}`: 401 unauthorized, 400 for a missing name or a bad id, 413 for a body
over the cap. Success: 200 `{}`."""

from __future__ import annotations

import json
import re
from urllib.parse import unquote

SITE_ID = "site-1"
API_KEY = "cio-key"
MAX_BODY = 32 * 1024
ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


def _err(status: int, message: str) -> tuple:
    return status, json.dumps({"meta": {"error": message}}).encode(), \
        {"Content-Type": "application/json"}


def _auth_ok(req) -> bool:
    import base64
    want = "Basic " + base64.b64encode(f"{SITE_ID}:{API_KEY}".encode()).decode()
    return req.headers.get("authorization") == want


def answer(n: int, req) -> tuple:
    path = req.path
    person = re.fullmatch(r"/api/v1/customers/([^/]+)", path)
    person_event = re.fullmatch(r"/api/v1/customers/([^/]+)/events", path)
    if not ((req.method == "PUT" and person) or
            (req.method == "POST" and (person_event or path == "/api/v1/events"))):
        return _err(404, "Not Found")
    if not _auth_ok(req):
        return _err(401, "Unauthorized request")
    if len(req.body) > MAX_BODY:
        return _err(413, "request too large: the maximum is 32 KB")
    try:
        body = json.loads(req.body)
    except ValueError:
        return _err(400, "invalid JSON")
    if not isinstance(body, dict):
        return _err(400, "body must be an object")
    if person:
        if not unquote(person.group(1)):
            return _err(400, "customer id is required")
        return 200, b"{}", {"Content-Type": "application/json"}
    if not body.get("name"):
        return _err(400, "event name is required")
    if body.get("type", "event") not in ("event", "page", "screen"):
        return _err(400, "type must be event, page or screen")
    if "id" in body and not ULID.match(str(body["id"])):
        return _err(400, "id must be a valid ULID")
    if path == "/api/v1/events" and not body.get("anonymous_id"):
        return _err(400, "anonymous_id is required")
    return 200, b"{}", {"Content-Type": "application/json"}


def calls(sink) -> list[tuple[str, str, dict]]:
    """(method, unquoted path, body) of every authorised call, in arrival order."""
    return [(r.method, unquote(r.path), json.loads(r.body)) for r in sink.requests()
            if _auth_ok(r)]
