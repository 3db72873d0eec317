"""Mailchimp Marketing API 3.0 audience members, as its docs describe them: Basic auth with any
user name and the API key as password; `PUT /3.0/lists/{list}/members/{hash}` where the hash is
the MD5 of the lowercased email, with `email_address` matching it and `status_if_new` of
subscribed / unsubscribed / cleaned / pending / transactional; `POST …/members/{hash}/events`
with a 2–30 character `name`, string `properties` — the member must exist (404 otherwise).
Errors are problem documents (`application/problem+json`): `{"type", "title", "status",
"detail", "instance"}` — 401 "API Key Invalid", 400 "Invalid Resource", 404 "Resource Not
Found". The stand-in keeps the members it was given."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading

API_KEY = "0123456789abcdef-us6"
LIST_ID = "a1b2c3d4e5"
STATUSES = {"subscribed", "unsubscribed", "cleaned", "pending", "transactional"}
MEMBER = re.compile(rf"^/3\.0/lists/{LIST_ID}/members/([0-9a-f]{{32}})(/events)?$")

members: dict[str, dict] = {}
_lock = threading.Lock()


def problem(status: int, title: str, detail: str) -> tuple:
    return status, json.dumps({
        "type": "https://mailchimp.com/developer/marketing/docs/errors/", "title": title,
        "status": status, "detail": detail, "instance": "b0e5-3c1e"}).encode(), \
        {"Content-Type": "application/problem+json"}


def reset() -> None:
    with _lock:
        members.clear()


def answer(n: int, req) -> tuple:
    try:
        user, _, key = base64.b64decode(req.headers.get("authorization", "")[6:]).decode().partition(":")
    except ValueError:
        key = ""
    if not req.headers.get("authorization", "").startswith("Basic ") or key != API_KEY:
        return problem(401, "API Key Invalid", "Your API key may be invalid, or you've attempted "
                       "to access the wrong datacenter.")
    m = MEMBER.match(req.path)
    if not m:
        return problem(404, "Resource Not Found", "The requested resource could not be found.")
    try:
        body = json.loads(req.body)
    except ValueError:
        return problem(400, "Invalid Resource", "The resource submitted could not be validated.")
    digest, events = m.group(1), m.group(2)
    if req.method == "PUT" and not events:
        email = str(body.get("email_address", ""))
        if hashlib.md5(email.lower().encode()).hexdigest() != digest:
            return problem(400, "Invalid Resource", "The email address does not match the hash.")
        if "@" not in email or email.endswith("@invalid.example"):
            return problem(400, "Invalid Resource",
                           f"{email} looks fake or invalid, please enter a real email address.")
        if body.get("status_if_new") not in STATUSES:
            return problem(400, "Invalid Resource", "status_if_new is invalid")
        with _lock:
            members[digest] = {**members.get(digest, {}), **body}
            member = members[digest]
        return 200, json.dumps({"id": digest, **member}).encode(), {"Content-Type": "application/json"}
    if req.method == "POST" and events:
        with _lock:
            known = digest in members
        if not known:
            return problem(404, "Resource Not Found", "The requested resource could not be found.")
        name = body.get("name")
        if not isinstance(name, str) or not 2 <= len(name) <= 30:
            return problem(400, "Invalid Resource", "Event name must be 2-30 characters.")
        if not all(isinstance(v, str) for v in (body.get("properties") or {}).values()):
            return problem(400, "Invalid Resource", "Event properties must be strings.")
        return 204, b"", {}
    return problem(405, "Method Not Allowed", "The requested method and resource are not compatible.")
