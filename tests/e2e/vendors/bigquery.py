"""Google BigQuery's streaming insert and the OAuth 2.0 token endpoint a service account uses,
as their docs describe them.

Token (`POST /token`, form-encoded): `grant_type` must be
`urn:ietf:params:oauth:grant-type:jwt-bearer`; `assertion` an RS256 JWT whose signature the
service account's public key verifies (checked with the openssl CLI), `iss` the client email,
`aud` the token URI, a BigQuery `scope`, `iat` not in the future and `exp` at most an hour after
`iat` and not past. Answer: `{"access_token", "expires_in": 3599, "token_type": "Bearer"}`;
errors `{"error": "invalid_grant" | "unsupported_grant_type", "error_description"}` with 400.

insertAll (`POST /bigquery/v2/projects/<p>/datasets/<d>/tables/<t>/insertAll`): a Bearer token
this endpoint issued (else 401 in Google's error shape), a known project/dataset/table (else 404
`notFound`), a body ≤ 10 MB (else 400), `rows` a non-empty array of `{"insertId", "json"}` with
at most 50,000 rows. A row naming a column the table lacks fails with reason `invalid`
("no such field: X."); with `skipInvalidRows` false every other row of that request fails with
reason `stopped` and nothing is inserted. Answer 200 `{"kind":
"bigquery#tableDataInsertAllResponse"}` plus `insertErrors` `[{"index", "errors": [{"reason",
"location", "debugInfo", "message"}]}]` when rows failed.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs

TESTDATA = Path(__file__).resolve().parents[3] / "src" / "destinations" / "bigquery" / "testdata"
PROJECT = "sy-test"
DATASET = "analytics"
CLIENT_EMAIL = "switchyard@sy-test.iam.gserviceaccount.com"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MAX_BODY = 10 * 1024 * 1024
MAX_ROWS = 50_000
COMMON = {"id", "anonymous_id", "user_id", "received_at", "sent_at", "timestamp",
          "original_timestamp", "context_ip", "context_library_name", "context_library_version"}


def service_account(token_uri: str) -> str:
    """The test service account's JSON key with its token_uri pointed at the stand-in."""
    sa = json.loads((TESTDATA / "service_account.json").read_text())
    sa["token_uri"] = token_uri
    return json.dumps(sa)


class BigQuery:
    """State of one stand-in: tables (name → columns), issued tokens, rows inserted."""

    def __init__(self, tables: dict[str, set[str]]):
        self.tables = {name: COMMON | cols for name, cols in tables.items()}
        self.tokens: set[str] = set()
        self.rows: dict[str, list[dict]] = {name: [] for name in tables}
        self.token_requests = 0
        self.lock = threading.Lock()
        self.token_uri = ""  # the aud a JWT must carry; set by the test
        self.rate_limit_next = 0  # answer this many insertAll calls 403 rateLimitExceeded

    def revoke_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    # ---- the answer function for WebhookSink -----------------------------------------------
    def answer(self, n: int, req) -> tuple:
        if req.method == "POST" and req.path == "/token":
            return self._token(req)
        prefix = f"/bigquery/v2/projects/"
        if req.method == "POST" and req.path.startswith(prefix) and req.path.endswith("/insertAll"):
            return self._insert_all(req)
        return _google_error(404, "notFound", f"Not found: URL {req.path}")

    def _token(self, req) -> tuple:
        with self.lock:
            self.token_requests += 1
        if not req.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return _oauth_error("invalid_request", "Content-Type must be form-encoded")
        form = parse_qs(req.body.decode(errors="replace"))
        if form.get("grant_type", [""])[0] != GRANT:
            return _oauth_error("unsupported_grant_type", "Invalid grant_type")
        jwt = form.get("assertion", [""])[0]
        parts = jwt.split(".")
        if len(parts) != 3:
            return _oauth_error("invalid_grant", "Invalid JWT: malformed")
        try:
            header = json.loads(_b64url(parts[0]))
            claims = json.loads(_b64url(parts[1]))
        except ValueError:
            return _oauth_error("invalid_grant", "Invalid JWT: not JSON")
        if header.get("alg") != "RS256":
            return _oauth_error("invalid_grant", "Invalid JWT: alg must be RS256")
        if not _verify_rs256(f"{parts[0]}.{parts[1]}".encode(), _b64url(parts[2])):
            return _oauth_error("invalid_grant", "Invalid JWT Signature.")
        now = time.time()
        if claims.get("iss") != CLIENT_EMAIL:
            return _oauth_error("invalid_grant", "Invalid issuer")
        if self.token_uri and claims.get("aud") != self.token_uri:
            return _oauth_error("invalid_grant", "Invalid JWT: audience")
        if "bigquery" not in str(claims.get("scope", "")):
            return _oauth_error("invalid_scope", "Invalid OAuth scope")
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int) or iat > now + 60 or \
                exp <= now or exp - iat > 3600:
            return _oauth_error("invalid_grant",
                                "Invalid JWT: Token must be a short-lived token (60 minutes) and "
                                "in a reasonable timeframe.")
        token = "ya29." + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens.add(token)
        return 200, json.dumps({"access_token": token, "expires_in": 3599,
                                "token_type": "Bearer"}).encode(), _JSON

    def _insert_all(self, req) -> tuple:
        auth = req.headers.get("authorization", "")
        with self.lock:
            ok = auth.startswith("Bearer ") and auth[7:] in self.tokens
        if not ok:
            return _google_error(401, "authError",
                                 "Request had invalid authentication credentials.",
                                 status="UNAUTHENTICATED")
        parts = req.path.split("/")  # ['', 'bigquery', 'v2', 'projects', p, 'datasets', d, 'tables', t, 'insertAll']
        if len(parts) != 10 or parts[4] != PROJECT or parts[6] != DATASET:
            return _google_error(404, "notFound", f"Not found: Dataset {parts[4]}:{parts[6]}")
        table = parts[8]
        if table not in self.tables:
            return _google_error(404, "notFound", f"Not found: Table {PROJECT}:{DATASET}.{table}")
        with self.lock:
            if self.rate_limit_next > 0:
                self.rate_limit_next -= 1
                return _google_error(403, "rateLimitExceeded",
                                     "Exceeded rate limits: too many api requests per user")
        if len(req.body) > MAX_BODY:
            return _google_error(400, "invalid",
                                 f"Request payload size exceeds the limit: {MAX_BODY} bytes.")
        try:
            body = json.loads(req.body)
        except ValueError:
            return _google_error(400, "parseError", "Parse Error")
        rows = body.get("rows") if isinstance(body, dict) else None
        if not isinstance(rows, list) or not rows:
            return _google_error(400, "invalid", "No rows present in the request.")
        if len(rows) > MAX_ROWS:
            return _google_error(400, "invalid", f"too many rows present in the request, limit: {MAX_ROWS}.")
        columns = self.tables[table]
        errors = []
        for i, row in enumerate(rows):
            if not isinstance(row, dict) or not isinstance(row.get("json"), dict) or \
                    not row.get("insertId"):
                errors.append({"index": i, "errors": [_row_error("invalid", "", "Missing json or insertId.")]})
                continue
            unknown = sorted(set(row["json"]) - columns)
            if unknown:
                errors.append({"index": i, "errors": [
                    _row_error("invalid", unknown[0], f"no such field: {unknown[0]}.")]})
        if errors and not body.get("skipInvalidRows"):
            failed = {e["index"] for e in errors}
            errors += [{"index": i, "errors": [_row_error("stopped", "", "")]}
                       for i in range(len(rows)) if i not in failed]
            errors.sort(key=lambda e: e["index"])
        else:
            with self.lock:
                self.rows[table].extend(r["json"] for r in rows)
        out = {"kind": "bigquery#tableDataInsertAllResponse"}
        if errors:
            out["insertErrors"] = errors
        return 200, json.dumps(out).encode(), _JSON


_JSON = {"Content-Type": "application/json"}


def _b64url(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _verify_rs256(data: bytes, signature: bytes) -> bool:
    with tempfile.TemporaryDirectory() as d:
        Path(d, "data").write_bytes(data)
        Path(d, "sig").write_bytes(signature)
        r = subprocess.run(["openssl", "dgst", "-sha256", "-verify",
                            str(TESTDATA / "public_key.pem"), "-signature", os.path.join(d, "sig"),
                            os.path.join(d, "data")], capture_output=True, timeout=30)
        return r.returncode == 0


def _row_error(reason: str, location: str, message: str) -> dict:
    return {"reason": reason, "location": location, "debugInfo": "", "message": message}


def _google_error(code: int, reason: str, message: str, status: str = "") -> tuple:
    status = status or {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED",
                        404: "NOT_FOUND"}.get(code, "UNKNOWN")
    return code, json.dumps({"error": {"code": code, "message": message, "errors": [
        {"message": message, "domain": "global", "reason": reason}], "status": status}}).encode(), _JSON


def _oauth_error(error: str, description: str) -> tuple:
    return 400, json.dumps({"error": error, "error_description": description}).encode(), _JSON
