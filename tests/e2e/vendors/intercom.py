"""Intercom's REST API (the parts the intercom destination uses), as its docs describe them:
`Authorization: Bearer <token>` (else 401 `unauthorized`), an `Intercom-Version` header,
JSON bodies; errors in Intercom's shape `{"type": "error.list", "request_id", "errors": [{"code",
"message"}]}`.

- `POST /contacts/search` with `{"query": {"field", "operator": "=", "value"}}` (fields
  `external_id`, `email`) → `{"type": "list", "data": [contact…], "total_count"}`.
- `POST /contacts` creates (role `user` or `lead`; `external_id` or `email` required); a contact
  with the same external_id or email exists → 409 `conflict`. `PUT /contacts/<id>` updates (404
  `not_found` for an unknown id). Custom attributes must exist in the workspace (`ATTRIBUTES`):
  else 400 `parameter_invalid`.
- `POST /events`: `event_name`, `created_at` (Unix seconds) and one of `user_id` / `email` /
  `id` required; the user must exist (else 404 `not_found` "User Not Found"); `metadata` at most
  10 keys with no nested objects (else 400 `parameter_invalid`). Answers 202 with an empty body.
- `POST /companies` creates or updates by `company_id` (required).
- `rate_limit_next` answers that many calls 429 with `X-RateLimit-Limit`, `X-RateLimit-Remaining`
  and `X-RateLimit-Reset` (Unix seconds).
"""

from __future__ import annotations

import json
import threading
import time

TOKEN = "dG9rOnRlc3Q="
ATTRIBUTES = {"plan", "logins"}
_JSON = {"Content-Type": "application/json"}


def _error(status: int, code: str, message: str, headers: dict | None = None) -> tuple:
    body = {"type": "error.list", "request_id": "req-1", "errors": [{"code": code, "message": message}]}
    return status, json.dumps(body).encode(), {**_JSON, **(headers or {})}


class Intercom:
    def __init__(self):
        self.contacts: dict[str, dict] = {}  # id → contact
        self.events: list[dict] = []
        self.companies: dict[str, dict] = {}  # company_id → company
        self.rate_limit_next = 0
        self.rate_limit_reset_in = 1
        self.lock = threading.Lock()
        self._next = 0x65a000

    def _find(self, field: str, value) -> dict | None:
        for c in self.contacts.values():
            if value is not None and c.get(field) == value:
                return c
        return None

    def answer(self, n: int, req) -> tuple:
        if req.headers.get("authorization") != f"Bearer {TOKEN}":
            return _error(401, "unauthorized", "Access Token Invalid")
        if not req.headers.get("intercom-version"):
            return _error(400, "intercom_version_invalid", "Intercom-Version header missing")
        with self.lock:
            if self.rate_limit_next > 0:
                self.rate_limit_next -= 1
                reset = int(time.time()) + self.rate_limit_reset_in
                return _error(429, "rate_limit_exceeded", "Rate Limit Exceeded",
                              {"X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "0",
                               "X-RateLimit-Reset": str(reset)})
        try:
            body = json.loads(req.body) if req.body else {}
        except ValueError:
            return _error(400, "parameter_invalid", "Invalid JSON")
        with self.lock:
            if req.method == "POST" and req.path == "/contacts/search":
                return self._search(body)
            if req.method == "POST" and req.path == "/contacts":
                return self._create(body)
            if req.method == "PUT" and req.path.startswith("/contacts/"):
                return self._update(req.path.rsplit("/", 1)[1], body)
            if req.method == "POST" and req.path == "/events":
                return self._event(body)
            if req.method == "POST" and req.path == "/companies":
                return self._company(body)
        return _error(404, "not_found", "Resource Not Found")

    def _search(self, body: dict) -> tuple:
        q = body.get("query") or {}
        if q.get("field") not in ("external_id", "email") or q.get("operator") != "=":
            return _error(400, "parameter_invalid", "Unsupported search query")
        found = self._find(q["field"], q.get("value"))
        data = [found] if found else []
        return 200, json.dumps({"type": "list", "data": data, "total_count": len(data)}).encode(), _JSON

    def _check_attributes(self, body: dict) -> tuple | None:
        for k in (body.get("custom_attributes") or {}):
            if k not in ATTRIBUTES:
                return _error(400, "parameter_invalid", f"Custom attribute '{k}' does not exist")
        return None

    def _create(self, body: dict) -> tuple:
        if body.get("role") not in ("user", "lead"):
            return _error(400, "parameter_invalid", "role must be user or lead")
        if not body.get("external_id") and not body.get("email"):
            return _error(400, "parameter_not_found", "external_id or email is required")
        if bad := self._check_attributes(body):
            return bad
        for field in ("external_id", "email"):
            if (c := self._find(field, body.get(field))) is not None:
                return _error(409, "conflict",
                              f"A contact matching those details already exists with id={c['id']}")
        self._next += 1
        contact = {"type": "contact", "id": f"{self._next:x}", **body}
        self.contacts[contact["id"]] = contact
        return 200, json.dumps(contact).encode(), _JSON

    def _update(self, cid: str, body: dict) -> tuple:
        if cid not in self.contacts:
            return _error(404, "not_found", "User Not Found")
        if bad := self._check_attributes(body):
            return bad
        c = self.contacts[cid]
        attrs = {**(c.get("custom_attributes") or {}), **(body.get("custom_attributes") or {})}
        c.update(body)
        c["custom_attributes"] = attrs
        return 200, json.dumps(c).encode(), _JSON

    def _event(self, body: dict) -> tuple:
        if not body.get("event_name") or not isinstance(body.get("created_at"), int):
            return _error(400, "parameter_invalid", "event_name and created_at are required")
        who = [k for k in ("user_id", "email", "id") if body.get(k)]
        if not who:
            return _error(400, "parameter_invalid", "user_id, email or id is required")
        field = {"user_id": "external_id", "email": "email", "id": "id"}[who[0]]
        if self._find(field, body[who[0]]) is None:
            return _error(404, "not_found", "User Not Found")
        md = body.get("metadata") or {}
        if len(md) > 10:
            return _error(400, "parameter_invalid", "Metadata has more than 10 keys")
        if any(isinstance(v, (dict, list)) for v in md.values()):
            return _error(400, "parameter_invalid", "Metadata values must be flat")
        self.events.append(body)
        return 202, b"", {}

    def _company(self, body: dict) -> tuple:
        if not body.get("company_id"):
            return _error(400, "parameter_not_found", "company_id is required")
        c = self.companies.setdefault(body["company_id"], {"type": "company", "id": f"c{len(self.companies)}"})
        c.update(body)
        return 200, json.dumps(c).encode(), _JSON
