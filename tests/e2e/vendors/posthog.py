"""PostHog batch capture (`POST /batch/`), as its docs describe it: the project API key in the
body (`api_key`), `batch` a non-empty array of events each with `event`, a `distinct_id` (top level
or in `properties`), an ISO 8601 `timestamp` and a UUID `uuid`; the body at most 20 MB. Errors in
PostHog's shape `{"type", "code", "detail", "attr"}`: 401 `invalid_api_key`, 400
`invalid_payload`, 413 for a body over the cap. Success: 200 `{"status": 1}`."""

from __future__ import annotations

import json
import re
from datetime import datetime

API_KEY = "phc_test_key"
MAX_BODY = 20 * 1024 * 1024
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _error(status: int, kind: str, code: str, detail: str) -> tuple:
    return status, json.dumps({"type": kind, "code": code, "detail": detail,
                               "attr": None}).encode(), {"Content-Type": "application/json"}


def _invalid(detail: str) -> tuple:
    return _error(400, "validation_error", "invalid_payload", detail)


def answer(n: int, req) -> tuple:
    if req.method != "POST" or req.path != "/batch/":
        return 404, b'{"detail":"Not found."}', {}
    if len(req.body) > MAX_BODY:
        return _error(413, "validation_error", "payload_too_large", "Request body too large")
    if not req.headers.get("content-type", "").startswith("application/json"):
        return _invalid("Content-Type must be application/json")
    try:
        body = json.loads(req.body)
    except ValueError:
        return _invalid("Malformed request data")
    if not isinstance(body, dict) or not body.get("api_key"):
        return _error(401, "authentication_error", "missing_api_key",
                      "API key not provided. You can find your project API key in PostHog "
                      "project settings.")
    if body["api_key"] != API_KEY:
        return _error(401, "authentication_error", "invalid_api_key",
                      "Project API key invalid. You can find your project API key in PostHog "
                      "project settings.")
    batch = body.get("batch")
    if not isinstance(batch, list) or not batch:
        return _invalid("No data found. Make sure to use a POST request with a batch array.")
    for i, e in enumerate(batch):
        if not isinstance(e, dict) or not isinstance(e.get("event"), str) or not e["event"]:
            return _invalid(f"Invalid payload: batch[{i}] has no event name")
        props = e.get("properties") or {}
        if not (e.get("distinct_id") or props.get("distinct_id")):
            return _invalid(f"Invalid payload: batch[{i}] has no distinct_id")
        if not UUID.match(str(e.get("uuid", ""))):
            return _invalid(f"Invalid payload: batch[{i}] uuid is not a UUID")
        try:
            datetime.fromisoformat(str(e.get("timestamp")).replace("Z", "+00:00"))
        except ValueError:
            return _invalid(f"Invalid payload: batch[{i}] timestamp is not ISO 8601")
    return 200, b'{"status":1}', {"Content-Type": "application/json"}


def events(sink) -> list[dict]:
    """Every event the stand-in accepted (answered 200), in arrival order."""
    out = []
    for r in sink.requests():
        try:
            body = json.loads(r.body)
        except ValueError:
            continue
        if isinstance(body, dict) and body.get("api_key") == API_KEY:
            out.extend(body.get("batch") or [])
    return out
