"""The admin listener of the real binary (issue 13): a user made with the CLI logs in, a token
works, the CLI changes accounts while the server runs, the audit log records it all, and the
public Tracking API listener never serves /api/v1."""

from __future__ import annotations

import base64
import http.client
import json
import os
import stat
import subprocess
import time

import pytest

from conftest import free_port, switchyard_bin


class AdminServer:
    def __init__(self, workdir):
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.config = workdir / "switchyard.yaml"
        self.log_path = workdir / "server.log"
        self.proc = None
        self.tls = None  # an ssl.SSLContext: the admin listener speaks HTTPS (admin.tls)

    def write_config(self, extra=()):
        self.port, self.admin_port = free_port(), free_port()
        self.config.write_text("\n".join([
            "version: 1",
            f"listen: 127.0.0.1:{self.port}",
            f"data_dir: {self.data_dir}",
            "io_threads: 1",
            "log_level: info",
            "sources:",
            "  - name: web",
            "    write_key: wk_admin_e2e",
            "admin:",
            f"  listen: 127.0.0.1:{self.admin_port}",
            *extra,
        ]) + "\n")

    def cli(self, *args, stdin=""):
        return subprocess.run([switchyard_bin(), *args, "--config", str(self.config)],
                              input=stdin, capture_output=True, text=True, timeout=60)

    def start(self):
        log = open(self.log_path, "ab")
        env = {**os.environ, "SWITCHYARD_TEST_DESTINATIONS": "1"}
        self.proc = subprocess.Popen([switchyard_bin(), "serve", "--config", str(self.config)],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
        log.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log_path.read_text()
            try:
                if self.request("GET", "/api/v1/openapi.json", admin=True)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("admin listener not up:\n" + self.log_path.read_text())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            assert self.proc.wait(20) == 0, self.log_path.read_text()

    def request(self, method, path, body=None, headers=None, admin=True):
        if admin and self.tls:
            conn = http.client.HTTPSConnection("127.0.0.1", self.admin_port, timeout=10,
                                               context=self.tls)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.admin_port if admin else self.port,
                                              timeout=10)
        data = json.dumps(body) if body is not None else None
        conn.request(method, path, body=data, headers=headers or {})
        res = conn.getresponse()
        out = (res.status, {k.lower(): v for k, v in res.getheaders()}, res.read())
        conn.close()
        return out


@pytest.fixture
def server(tmp_path):
    s = AdminServer(tmp_path)
    s.write_config()
    yield s
    s.stop()


def login(server, user, password):
    status, headers, body = server.request("POST", "/api/v1/login",
                                           {"user": user, "password": password})
    assert status == 200, body
    cookie = headers["set-cookie"].split(";")[0]
    return {"Cookie": cookie}, json.loads(body)["csrf_token"], headers["set-cookie"]


def test_cli_user_logs_in_tokens_work_and_the_public_listener_serves_no_admin_route(server):
    r = server.cli("users", "add", "alice", "--role", "admin", stdin="alice-password-1\n")
    assert r.returncode == 0, r.stderr
    server.start()

    cookie, csrf, set_cookie = login(server, "alice", "alice-password-1")
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/"):
        assert attribute in set_cookie
    status, _, body = server.request("GET", "/api/v1/session", headers=cookie)
    assert status == 200 and json.loads(body)["role"] == "admin", body
    status, _, body = server.request("POST", "/api/v1/login", {"user": "alice", "password": "x"})
    assert status == 401 and json.loads(body)["error"]["code"] == "bad_credentials"

    # A mutation by cookie needs the CSRF token.
    new_token = {"name": "viewer-bot", "role": "viewer"}
    status, _, body = server.request("POST", "/api/v1/tokens", new_token, headers=cookie)
    assert status == 403 and json.loads(body)["error"]["code"] == "csrf_token_invalid"
    status, _, body = server.request("POST", "/api/v1/tokens", new_token,
                                     headers={**cookie, "X-CSRF-Token": csrf})
    assert status == 201, body
    viewer = {"Authorization": "Bearer " + json.loads(body)["token"]}
    status, _, body = server.request("GET", "/api/v1/session", headers=viewer)
    assert status == 200 and json.loads(body)["user"] == "token:viewer-bot", body
    status, _, body = server.request("GET", "/api/v1/users", headers=viewer)
    assert status == 403 and json.loads(body)["error"]["code"] == "forbidden", body

    # The CLI while the server runs: a token and a user work at once, a removal ends sessions.
    r = server.cli("tokens", "create", "ci", "--role", "editor")
    assert r.returncode == 0, r.stderr
    ci = {"Authorization": "Bearer " + r.stdout.strip()}
    status, _, body = server.request("GET", "/api/v1/session", headers=ci)
    assert status == 200 and json.loads(body)["role"] == "editor", body
    assert server.cli("users", "add", "bob", "--role", "viewer",
                      stdin="bob-password-1\n").returncode == 0
    bob, _, _ = login(server, "bob", "bob-password-1")
    assert server.request("GET", "/api/v1/session", headers=bob)[0] == 200
    r = server.cli("users", "remove", "bob")
    assert r.returncode == 0, r.stderr
    assert server.request("GET", "/api/v1/session", headers=bob)[0] == 401
    assert server.cli("tokens", "revoke", "ci").returncode == 0
    assert server.request("GET", "/api/v1/session", headers=ci)[0] == 401
    listed = server.cli("users", "list").stdout
    assert "alice\tadmin" in listed and "bob" not in listed, listed

    # The public listener knows nothing of /api/v1, whatever the method or credentials.
    for method, path, headers in [("GET", "/api/v1/session", cookie),
                                  ("GET", "/api/v1/session", viewer),
                                  ("POST", "/api/v1/login", {}),
                                  ("GET", "/api/v1/openapi.json", {}),
                                  ("GET", "/api/v1/users", viewer)]:
        body = {"user": "alice", "password": "alice-password-1"} if method == "POST" else None
        status, got, _ = server.request(method, path, body, headers=headers, admin=False)
        assert status == 404, (method, path, status)
        assert "set-cookie" not in got
    assert server.request("GET", "/healthz", admin=False)[0] == 200

    # Configuration through the server's config controller: a change with the version read.
    status, _, body = server.request("GET", "/api/v1/sources", headers=viewer)
    assert status == 200 and b'"web"' in body, body
    status, got, body = server.request("GET", "/api/v1/sources/web", headers=cookie)
    assert status == 200 and got.get("etag"), (status, got, body)
    status, _, body = server.request("PATCH", "/api/v1/sources/web", {"enabled": False},
                                     headers=viewer)
    assert status == 403, body
    status, _, body = server.request("PATCH", "/api/v1/sources/web", {"enabled": False},
                                     headers={**cookie, "X-CSRF-Token": csrf,
                                              "If-Match": got["etag"]})
    assert status == 200, body
    status, _, body = server.request("PATCH", "/api/v1/sources/web", {"enabled": True},
                                     headers={**cookie, "X-CSRF-Token": csrf,
                                              "If-Match": got["etag"]})
    assert status == 412, body  # the version read before the first change is stale now

    # Every change and login is in the audit log, through the API and the CLI.
    status, _, body = server.request("GET", "/api/v1/audit?limit=100", headers=cookie)
    assert status == 200, body
    actions = [(e["actor"], e["action"]) for e in json.loads(body)["entries"]]
    for expected in [("cli", "user.add"), ("alice", "login"), ("alice", "login.failed"),
                     ("alice", "token.create"), ("cli", "token.create"), ("bob", "login"),
                     ("cli", "user.remove"), ("cli", "token.revoke"),
                     ("alice", "source.patch")]:
        assert expected in actions, (expected, actions)
    r = server.cli("audit", "--limit", "3")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 3, r


    # Only hashes on disk, readable by the owner alone.
    creds = server.data_dir / "admin" / "credentials.json"
    text = creds.read_text()
    assert "alice-password-1" not in text and "$argon2id$" in text
    assert stat.S_IMODE(os.stat(creds).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(server.data_dir / "admin" / "audit.jsonl").st_mode) == 0o600


def test_failed_logins_are_locked_out_with_retry_after(server):
    assert server.cli("users", "add", "carol", "--role", "viewer",
                      stdin="carol-password\n").returncode == 0
    server.start()
    for _ in range(5):
        status, _, _ = server.request("POST", "/api/v1/login",
                                      {"user": "carol", "password": "guess-guess"})
        assert status == 401
    status, headers, body = server.request("POST", "/api/v1/login",
                                           {"user": "carol", "password": "carol-password"})
    assert status == 429, body
    assert int(headers["retry-after"]) >= 1
    time.sleep(int(headers["retry-after"]) + 0.1)
    login(server, "carol", "carol-password")


def test_destination_stats_count_what_the_server_delivered(server):
    server.write_config(extra=["destinations:", "  - name: hole", "    type: blackhole"])
    token = server.cli("tokens", "create", "watch", "--role", "viewer").stdout.strip()
    server.start()
    auth = {"Authorization": "Basic " + base64.b64encode(b"wk_admin_e2e:").decode(),
            "Content-Type": "application/json"}
    for i in range(3):
        status, _, body = server.request("POST", "/v1/track",
                                         {"event": "Signed Up", "userId": f"u{i}"},
                                         headers=auth, admin=False)
        assert status == 200, body
    headers = {"Authorization": "Bearer " + token}
    deadline = time.monotonic() + 15
    while True:
        status, _, body = server.request("GET", "/api/v1/destinations/hole/stats?window=5m",
                                         headers=headers)
        assert status in (200, 404), body  # 404 until the stream has recorded something
        if status == 200 and json.loads(body)["totals"]["delivered"] == 3:
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.1)
    assert json.loads(body)["window_minutes"] == 5
    backlog = json.loads(body)["backlog"]  # the stream runs: known, and caught up by now
    assert backlog is not None and backlog["events"] >= 0 and backlog["seconds"] >= 0, body
    status, _, body = server.request("GET", "/api/v1/destinations/nothing/stats", headers=headers)
    assert status == 404, body


def test_no_admin_listener_without_the_section(tmp_path):
    port = free_port()
    config = tmp_path / "switchyard.yaml"
    config.write_text(f"version: 1\nlisten: 127.0.0.1:{port}\ndata_dir: {tmp_path / 'data'}\n"
                      "log_level: info\nsources:\n  - name: web\n    write_key: wk\n")
    log = open(tmp_path / "server.log", "ab")
    proc = subprocess.Popen([switchyard_bin(), "serve", "--config", str(config)],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    log.close()
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
                time.sleep(0.05)
        assert "admin listener" not in (tmp_path / "server.log").read_text()
    finally:
        proc.terminate()
        assert proc.wait(20) == 0


def make_certificate(directory, name="admin"):
    cert, key = directory / f"{name}-cert.pem", directory / f"{name}-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def test_admin_tls_serves_https_with_a_secure_cookie_and_refuses_plain_http(tmp_path):
    import socket
    import ssl
    cert, key = make_certificate(tmp_path)
    s = AdminServer(tmp_path)
    s.write_config(extra=["  tls:", f"    cert: {cert}", f"    key: {key}"])
    r = s.cli("users", "add", "alice", "--role", "admin", stdin="alice-password-1\n")
    assert r.returncode == 0, r.stderr
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False  # the certificate names 127.0.0.1 as CN only
    s.tls = context
    try:
        s.start()
        cookie, _, set_cookie = login(s, "alice", "alice-password-1")
        assert "Secure" in set_cookie and "HttpOnly" in set_cookie, set_cookie
        status, _, body = s.request("GET", "/api/v1/session", headers=cookie)
        assert status == 200 and json.loads(body)["user"] == "alice", body
        # The console's pages come over HTTPS too.
        status, _, body = s.request("GET", "/")
        assert status == 200 and b"<html" in body.lower(), body[:200]
        # Plain HTTP to the TLS port: the connection is closed, no HTTP answer.
        with socket.create_connection(("127.0.0.1", s.admin_port), timeout=10) as plain:
            plain.sendall(b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n")
            got = b""
            while chunk := plain.recv(4096):
                got += chunk
        assert b"HTTP/" not in got, got
        # TLS 1.1 is refused.
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.check_hostname = False
        old.verify_mode = ssl.CERT_NONE
        try:
            old.minimum_version = ssl.TLSVersion.TLSv1
            old.maximum_version = ssl.TLSVersion.TLSv1_1
            old.set_ciphers("ALL:@SECLEVEL=0")
        except (ValueError, ssl.SSLError):
            pass
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            with socket.create_connection(("127.0.0.1", s.admin_port), timeout=10) as raw:
                with old.wrap_socket(raw) as tls:
                    tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    tls.recv(10)
        # The Tracking API listener stays plain HTTP.
        status, _, _ = s.request("GET", "/healthz", admin=False)
        assert status == 200
    finally:
        s.stop()


def test_admin_tls_with_a_bad_certificate_is_a_config_error_naming_the_file(tmp_path):
    cert, key = make_certificate(tmp_path)
    s = AdminServer(tmp_path)
    # A file that is missing: check-config names it (file and line).
    s.write_config(extra=["  tls:", f"    cert: {tmp_path / 'nope.pem'}", f"    key: {key}"])
    r = subprocess.run([switchyard_bin(), "check-config", str(s.config)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode != 0 and "admin.tls.cert" in r.stderr and "nope.pem" in r.stderr, r.stderr
    # A file that is there but holds no certificate: serve refuses to start, naming it.
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    s.write_config(extra=["  tls:", f"    cert: {junk}", f"    key: {key}"])
    r = subprocess.run([switchyard_bin(), "serve", "--config", str(s.config)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0, r.stderr
    assert "admin.tls" in r.stderr + r.stdout and "junk.pem" in r.stderr + r.stdout, r.stderr
