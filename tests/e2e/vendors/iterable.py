"""Iterable's bulk APIs as its docs describe them: the `Api-Key` header; `POST
/api/events/trackBulk` `{"events": [{email | userId, eventName, id?, createdAt?, dataFields?}]}`
and `POST /api/users/bulkUpdate` `{"users": [{email | userId, dataFields?, preferUserId?}]}`;
a body ≤ 4 MB. Errors as `{"msg", "code", "params"}`: 401 `BadApiKey`, 400 `BadJsonBody` /
`BadParams`, 413. A bulk call answers 200 with counts and the identifiers it refused
(`failedUpdates.invalidEmails` …, `disallowedEventNames`); the rest is processed."""

from __future__ import annotations

import json
import re

API_KEY = "itbl-test-key"
MAX_BODY = 4 * 1024 * 1024
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DISALLOWED = {"Forbidden Event"}  # the project's blocked event names, for the tests


def _err(status: int, code: str, msg: str) -> tuple:
    return status, json.dumps({"msg": msg, "code": code, "params": None}).encode(), \
        {"Content-Type": "application/json"}


def answer(n: int, req) -> tuple:
    if req.method != "POST" or req.path not in ("/api/events/trackBulk", "/api/users/bulkUpdate"):
        return _err(404, "NotFound", "Not found")
    if req.headers.get("api-key") != API_KEY:
        return _err(401, "BadApiKey", "Invalid API key")
    if len(req.body) > MAX_BODY:
        return _err(413, "RequestTooLarge", "Request body too large")
    try:
        body = json.loads(req.body)
    except ValueError:
        return _err(400, "BadJsonBody", "Invalid JSON body")
    key = "events" if req.path.endswith("trackBulk") else "users"
    items = body.get(key) if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        return _err(400, "BadParams", f"'{key}' must be a non-empty array")
    failed = {k: [] for k in ("invalidEmails", "invalidUserIds", "notFoundEmails",
                              "notFoundUserIds", "forgottenEmails", "forgottenUserIds",
                              "conflictEmails", "conflictUserIds")}
    disallowed = []
    ok = 0
    for it in items:
        if not isinstance(it, dict) or not (it.get("email") or it.get("userId")):
            return _err(400, "BadParams", "email or userId is required")
        if key == "events" and not it.get("eventName"):
            return _err(400, "BadParams", "eventName is required")
        if it.get("email") and not EMAIL.match(it["email"]):
            failed["invalidEmails"].append(it["email"])
        elif key == "events" and it["eventName"] in DISALLOWED:
            disallowed.append(it["eventName"])
        else:
            ok += 1
    doc = {"successCount": ok, "failCount": len(items) - ok,
           "invalidEmails": failed["invalidEmails"], "invalidUserIds": [],
           "disallowedEventNames": disallowed, "filteredOutFields": [], "createdFields": [],
           "failedUpdates": failed}
    return 200, json.dumps(doc).encode(), {"Content-Type": "application/json"}


def items(sink, path: str) -> list[dict]:
    key = "events" if path.endswith("trackBulk") else "users"
    out = []
    for r in sink.requests():
        if r.path == path and r.headers.get("api-key") == API_KEY:
            out.extend(json.loads(r.body).get(key) or [])
    return out
