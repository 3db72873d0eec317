"""Klaviyo JSON:API `POST /api/events` and `POST /api/profile-import`, as its docs describe them:
`Authorization: Klaviyo-API-Key <private key>`, a `revision` header (YYYY-MM-DD), JSON:API
bodies `{"data": {"type": "event" | "profile", "attributes": {...}}}`; an event needs a metric
name, a profile naming email, phone_number or external_id, and `properties`; a profile needs
one of those identifiers; an email must look like one. Answers 202 (events) / 201 (profiles);
errors are `{"errors": [{"id", "status", "code", "title", "detail", "source": {"pointer"}}]}`
with 401 `not_authenticated`, 400 `invalid`, 429 `throttled` (with Retry-After)."""

from __future__ import annotations

import json
import re

API_KEY = "pk_klaviyo_test"
REVISION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.\w+)?$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def error(status: int, code: str, title: str, detail: str, pointer: str | None = None,
          headers: dict | None = None) -> tuple:
    e = {"id": "e-1", "status": status, "code": code, "title": title, "detail": detail}
    if pointer:
        e["source"] = {"pointer": pointer}
    return status, json.dumps({"errors": [e]}).encode(), \
        {"Content-Type": "application/vnd.api+json", **(headers or {})}


def _identifiers(attrs: dict, pointer: str) -> tuple | None:
    if not any(attrs.get(k) for k in ("email", "phone_number", "external_id")):
        return error(400, "invalid", "Invalid input.",
                     "One of email, phone_number or external_id is required", pointer)
    if attrs.get("email") is not None and not EMAIL.match(str(attrs["email"])):
        return error(400, "invalid", "Invalid input.", "Invalid email address",
                     pointer + "/email")
    return None


def answer(n: int, req) -> tuple:
    if req.headers.get("authorization") != "Klaviyo-API-Key " + API_KEY:
        return error(401, "not_authenticated", "Authentication credentials were not provided.",
                     "Missing or invalid private key.")
    if not REVISION.match(req.headers.get("revision", "")):
        return error(400, "invalid", "Invalid input.", "A valid revision header is required")
    try:
        data = json.loads(req.body)["data"]
        attrs = data["attributes"]
    except (ValueError, KeyError, TypeError):
        return error(400, "invalid", "Invalid input.", "Malformed JSON:API document")
    if req.method == "POST" and req.path == "/api/events":
        if data.get("type") != "event" or not isinstance(attrs.get("properties"), dict):
            return error(400, "invalid", "Invalid input.", "properties is required",
                         "/data/attributes/properties")
        name = (((attrs.get("metric") or {}).get("data") or {}).get("attributes") or {}).get("name")
        if not name:
            return error(400, "invalid", "Invalid input.", "metric name is required",
                         "/data/attributes/metric")
        profile = ((attrs.get("profile") or {}).get("data") or {}).get("attributes") or {}
        bad = _identifiers(profile, "/data/attributes/profile/data/attributes")
        return bad or (202, b"", {})
    if req.method == "POST" and req.path == "/api/profile-import":
        if data.get("type") != "profile":
            return error(400, "invalid", "Invalid input.", "type must be profile", "/data/type")
        bad = _identifiers(attrs, "/data/attributes")
        return bad or (201, json.dumps({"data": {"type": "profile", "id": "01H",
                                                 "attributes": attrs}}).encode(),
                       {"Content-Type": "application/vnd.api+json"})
    return error(404, "not_found", "Not found.", "No such endpoint")


def resources(sink, path: str) -> list[dict]:
    return [r.json()["data"] for r in sink.requests() if r.path == path]
