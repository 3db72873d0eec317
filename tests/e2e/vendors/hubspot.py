"""HubSpot `POST /crm/v3/objects/contacts/batch/upsert` and `POST /events/v3/send`, as its docs
describe them: `Authorization: Bearer <private app token>`. The upsert takes 1–100 `inputs` of
`{"idProperty": "email", "id", "properties"}` with unique ids and string property values of
known contact properties; an input whose email is invalid fails alone: 207 with
`{"status": "COMPLETE", "results", "numErrors", "errors": [{"status": "error", "category",
"message", "context": {"ids": [...]}}]}`. The event send takes `eventName` (an event defined in
the account), `email`/`objectId`/`utk`, `occurredAt` and `properties` and answers 204. Errors:
`{"status": "error", "message", "correlationId", "category"}` — 401 INVALID_AUTHENTICATION,
400 VALIDATION_ERROR, 429 RATE_LIMITS with X-HubSpot-RateLimit-* headers."""

from __future__ import annotations

import json
import re

TOKEN = "pat-na1-hubspot"
EVENTS = {"pe123_order_completed"}
MAX_INPUTS = 100
PROPERTIES = {"email", "firstname", "lastname", "phone", "company", "website", "jobtitle",
              "address", "city", "state", "zip", "country"}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
UPSERT = "/crm/v3/objects/contacts/batch/upsert"
SEND = "/events/v3/send"


def error(status: int, category: str, message: str, headers: dict | None = None) -> tuple:
    return status, json.dumps({"status": "error", "message": message, "correlationId": "c-1",
                               "category": category}).encode(), \
        {"Content-Type": "application/json", **(headers or {})}


def answer(n: int, req) -> tuple:
    if req.headers.get("authorization") != "Bearer " + TOKEN:
        return error(401, "INVALID_AUTHENTICATION", "Authentication credentials not found.")
    try:
        body = json.loads(req.body)
    except ValueError:
        return error(400, "VALIDATION_ERROR", "Invalid input JSON")
    if req.method == "POST" and req.path == UPSERT:
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not 1 <= len(inputs) <= MAX_INPUTS:
            return error(400, "VALIDATION_ERROR", f"inputs must hold 1 to {MAX_INPUTS} objects")
        ids = [i.get("id") for i in inputs]
        if len(set(ids)) != len(ids):
            return error(400, "VALIDATION_ERROR", "Duplicate IDs found in batch input")
        results, errors = [], []
        for i in inputs:
            props = i.get("properties") or {}
            if i.get("idProperty") != "email" or set(props) - PROPERTIES or \
                    not all(isinstance(v, str) for v in props.values()):
                return error(400, "VALIDATION_ERROR", "Property values were not valid")
            if not EMAIL.match(i["id"]):
                errors.append({"status": "error", "category": "VALIDATION_ERROR",
                               "message": f"Email address {i['id']} is invalid",
                               "context": {"ids": [i["id"]]}})
            else:
                results.append({"id": str(len(results) + 1), "properties": props})
        doc = {"status": "COMPLETE", "results": results}
        if errors:
            doc.update(numErrors=len(errors), errors=errors)
            return 207, json.dumps(doc).encode(), {"Content-Type": "application/json"}
        return 200, json.dumps(doc).encode(), {"Content-Type": "application/json"}
    if req.method == "POST" and req.path == SEND:
        if body.get("eventName") not in EVENTS:
            return error(400, "VALIDATION_ERROR", f"Event {body.get('eventName')} does not exist")
        if not (body.get("email") or body.get("objectId") or body.get("utk")):
            return error(400, "VALIDATION_ERROR", "One of email, objectId or utk is required")
        return 204, b"", {}
    return error(404, "OBJECT_NOT_FOUND", "Not found")
