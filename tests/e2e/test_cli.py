"""The switchyard binary's command line: subcommands, --help, check-config, dump --source,
and how serve refuses a bad config or a data_dir in use."""
import hashlib
import json
import stat
import subprocess
import time

from conftest import SOURCE, SOURCE_2, WRITE_KEY, WRITE_KEY_2, new_id, switchyard_bin

MINIMAL = """version: 1
listen: 127.0.0.1:8080
data_dir: ./data
sources:
  - name: web
    write_key: wk_web_demo
  - name: backend
    write_key: wk_backend_demo
"""


def run(*args, cwd=None, timeout=30):
    return subprocess.run([switchyard_bin(), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def test_version_and_help_for_every_subcommand():
    v = run("version")
    assert v.returncode == 0 and v.stdout.startswith("switchyard "), v
    for sub in ("serve", "dump", "check-config", "destinations", "version"):
        h = run(sub, "--help")
        assert h.returncode == 0, (sub, h)
        assert sub in h.stdout and "--help" in h.stdout, (sub, h.stdout)
    assert run().returncode != 0  # a subcommand is required
    assert run("frobnicate").returncode != 0


def test_check_config_accepts_the_minimal_file_as_written(tmp_path):
    (tmp_path / "switchyard.yaml").write_text(MINIMAL)
    r = run("check-config", "switchyard.yaml", cwd=tmp_path)
    assert r.returncode == 0, r
    assert "switchyard.yaml: ok (2 sources" in r.stdout, r.stdout
    assert not (tmp_path / "data").exists()  # validating starts nothing


def test_check_config_names_file_line_and_key(tmp_path):
    bad = MINIMAL.replace("data_dir: ./data", "data_dir: ./data\nlisten_port: 9") + "log:\n  fsync: sometimes\n"
    (tmp_path / "bad.yaml").write_text(bad)
    r = run("check-config", "bad.yaml", cwd=tmp_path)
    assert r.returncode == 2, r
    assert "bad.yaml:4: listen_port: unknown key" in r.stderr, r.stderr
    assert "bad.yaml:11: log.fsync: expected one of: always, interval, never" in r.stderr, r.stderr
    missing = run("check-config", "nope.yaml", cwd=tmp_path)
    assert missing.returncode == 2 and "cannot read config file nope.yaml" in missing.stderr


def test_check_config_reports_every_layer_in_one_pass(tmp_path, monkeypatch):
    """Structural errors, unknown destination types, test doubles without the switch and the
    destinations' settings (missing, misspelt, out of range, not in an enum) all in one report,
    sorted by line: nobody fixes one layer to discover the next."""
    monkeypatch.delenv("SWITCHYARD_TEST_DESTINATIONS", raising=False)
    bad = MINIMAL + """log:
  fsync: sometimes
destinations:
  - name: hooks
    type: webhook
    settings:
      urll: http://127.0.0.1:9/in
      max_events: 0
  - name: nope
    type: webhooks
  - name: retrying
    type: flaky
  - name: nameless
    settings: {x: 1}
  - name: wh
    type: sqlite
    settings:
      sync_interval: soon
"""
    (tmp_path / "bad.yaml").write_text(bad)
    r = run("check-config", "bad.yaml", cwd=tmp_path)
    assert r.returncode == 2, r
    want = [
        "bad.yaml:10: log.fsync: expected one of: always, interval, never",
        "bad.yaml:12: destinations[0].settings.url: required key is missing",
        "bad.yaml:15: destinations[0].settings.urll: unknown key (known keys: url, headers,",
        "bad.yaml:16: destinations[0].settings.max_events: out of range [1, 10000]",
        "bad.yaml:17: destinations[1].type: unknown destination type 'webhooks' (known: amplitude,",
        "bad.yaml:19: destinations[2].type: unknown destination type 'flaky'",
        "'flaky' is a test double, offered only with SWITCHYARD_TEST_DESTINATIONS=1",
        "bad.yaml:21: destinations[3].type: required key is missing",
        "bad.yaml:26: destinations[4].settings.sync_interval: expected a duration",
    ]
    for w in want:
        assert w in r.stderr, (w, r.stderr)
    lines = [l for l in r.stderr.splitlines() if l.startswith("bad.yaml:")]
    assert [int(l.split(":")[1]) for l in lines] == sorted(int(l.split(":")[1]) for l in lines)
    # With the switch the test double is accepted; the rest is still reported.
    monkeypatch.setenv("SWITCHYARD_TEST_DESTINATIONS", "1")
    r = run("check-config", "bad.yaml", cwd=tmp_path)
    assert r.returncode == 2 and "destinations[2]" not in r.stderr, r.stderr
    assert "destinations[1].type: unknown destination type 'webhooks'" in r.stderr


def test_config_export_merges_the_admin_api_overlay_and_round_trips(tmp_path):
    """check-config and `config export` read the file with data_dir/config-overlay.json (the
    changes made through the admin API, docs/formats/overlay.md) on top; the export passes
    check-config on its own; orphaned entries are warned about; a damaged overlay is an error."""
    (tmp_path / "switchyard.yaml").write_text(MINIMAL + """destinations:
  - name: hooks
    type: webhook
    settings:
      url: http://127.0.0.1:9/in
""")
    data = tmp_path / "data"
    data.mkdir()
    sha = hashlib.sha256(b"wk_mobile").hexdigest()
    overlay = {
        "format": "switchyard-config-overlay", "format_version": 1, "version": 3,
        "sources": {
            "mobile": {"op": "create", "version": 1, "fields": {"write_key_sha256": sha}},
            "backend": {"op": "patch", "version": 2, "fields": {"enabled": False}},
        },
        "destinations": {
            "hooks": {"op": "patch", "version": 3,
                      "fields": {"sources": ["mobile"], "settings": {"secret": "s3cret"}}},
            "gone": {"op": "delete", "version": 3},
        },
    }
    (data / "config-overlay.json").write_text(json.dumps(overlay))
    r = run("check-config", "switchyard.yaml", cwd=tmp_path)
    assert r.returncode == 0, r
    assert "3 sources, 1 destinations; with the admin API's changes, overlay version 3" in r.stdout
    assert "destinations/gone: deletes a destination the file no longer has" in r.stderr
    e = run("config", "export", "--config", "switchyard.yaml", cwd=tmp_path)
    assert e.returncode == 0, e
    # Secrets included: the setting as given, the file's key, the API-made key's digest.
    assert "s3cret" in e.stdout and sha in e.stdout and "wk_web_demo" in e.stdout, e.stdout
    assert "# overlay: destinations/gone" in e.stdout
    (tmp_path / "exported.yaml").write_text(e.stdout)
    assert run("check-config", "exported.yaml", cwd=tmp_path).returncode == 0
    # Without the overlay the export alone is the same config.
    (data / "config-overlay.json").rename(data / "aside.json")
    alone = run("check-config", "exported.yaml", cwd=tmp_path)
    assert alone.returncode == 0 and "3 sources, 1 destinations)" in alone.stdout, alone
    again = run("config", "export", "--config", "exported.yaml", cwd=tmp_path)
    assert again.returncode == 0, again
    body = lambda text: [l for l in text.splitlines() if not l.startswith("#")]
    assert body(again.stdout) == body(e.stdout)
    (data / "config-overlay.json").write_text("{")
    bad = run("check-config", "switchyard.yaml", cwd=tmp_path)
    assert bad.returncode == 2 and "config-overlay.json" in bad.stderr, bad


def test_destinations_lists_every_type_with_its_settings(monkeypatch):
    monkeypatch.delenv("SWITCHYARD_TEST_DESTINATIONS", raising=False)
    r = run("destinations")
    assert r.returncode == 0, r
    types = [l.split(" ")[0] for l in r.stdout.splitlines() if l and not l.startswith(" ")]
    assert types == [  # one a line, so branches adding destinations merge cleanly
        "amplitude",
        "bigquery",
        "braze",
        "customerio",
        "google-analytics-4",
        "heap",
        "http",
        "hubspot",
        "intercom",
        "iterable",
        "kafka",
        "kinesis",
        "klaviyo",
        "mailchimp",
        "meta-conversions",
        "mixpanel",
        "pinterest",
        "postgres",
        "posthog",
        "segment",
        "slack",
        "sqlite",
        "tiktok",
        "webhook",
    ], r.stdout
    assert "webhook (Webhooks): POSTs each event" in r.stdout
    rows = {l.split()[0]: l for l in r.stdout.split("webhook (Webhooks)")[1].splitlines()[1:] if l}
    assert rows["url"].split()[1:4] == ["url", "-", "yes"], rows
    assert rows["max_events"].split()[1:5] == ["integer,", "1–10000", "100", "no"], rows
    one = run("destinations", "slack")
    assert one.returncode == 0 and one.stdout.startswith("slack (Slack):"), one
    assert "{{type}} {{event}} from {{userId}}" in one.stdout
    assert run("destinations", "flaky").returncode == 2  # a test double: not offered
    monkeypatch.setenv("SWITCHYARD_TEST_DESTINATIONS", "1")
    r = run("destinations", "flaky")
    assert r.returncode == 0 and "flaky (Flaky, test double)" in r.stdout, r
    assert "list of ok | retry | reject" in r.stdout, r.stdout


def test_serve_refuses_an_invalid_config_and_starts_nothing(tmp_path):
    (tmp_path / "bad.yaml").write_text("version: 1\ndata_dir: ./d\nsources: []\n")
    r = run("serve", "--config", "bad.yaml", cwd=tmp_path)
    assert r.returncode == 2, r
    assert "bad.yaml:3: sources: expected a non-empty list" in r.stderr
    assert not (tmp_path / "d").exists()


def test_a_second_server_on_the_same_data_dir_is_refused(server):
    r = run("serve", "--config", str(server.config_path))
    assert r.returncode == 1, r
    assert "in use by another switchyard process" in r.stderr, r.stderr
    assert server.healthy()


def test_two_serves_on_one_data_dir_and_the_read_only_commands_beside_them(make_server, tmp_path):
    """A second `serve` with its own config (another port) on the first one's data_dir is
    refused, naming the pid that holds data_dir/LOCK; the read-only commands keep working beside
    the running server; once the first stops, the second starts."""
    first = make_server()
    mid = new_id("lock")
    assert first.post("/v1/track", {"userId": "u", "event": "e", "messageId": mid},
                      write_key=WRITE_KEY).status == 200
    second_cfg = tmp_path / "second.yaml"
    second_cfg.write_text(first.config_path.read_text().replace(
        f"listen: 127.0.0.1:{first.port}", "listen: 127.0.0.1:0"))
    r = run("serve", "--config", str(second_cfg))
    assert r.returncode == 1, r
    assert "in use by another switchyard process" in r.stderr, r.stderr
    assert f"(pid {first.pid})" in r.stderr, r.stderr
    assert first.healthy()

    dump = run("dump", "--config", str(first.config_path))
    assert dump.returncode == 0, dump
    assert [json.loads(line)["messageId"] for line in dump.stdout.splitlines()] == [mid]
    dlq = run("dlq", "list", "--config", str(first.config_path))
    assert dlq.returncode == 0, dlq

    assert first.stop() == 0
    proc = subprocess.Popen([switchyard_bin(), "serve", "--config", str(second_cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and proc.poll() is None:
            lock = (first.data_dir / "LOCK").read_text().strip()
            if lock == str(proc.pid):
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read()
        assert (first.data_dir / "LOCK").read_text().strip() == str(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_data_dir_is_private_to_the_server_user(server):
    """data_dir and its directories are 0700, its files 0600 (docs/security.md, "Files and
    permissions"), whatever the umask of the test runner."""
    mid = new_id("perm")
    assert server.post("/v1/track", {"userId": "u", "event": "e", "messageId": mid},
                       write_key=WRITE_KEY).status == 200
    root = server.data_dir
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    checked = 0
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        if path.is_dir():
            assert mode == 0o700, (path, oct(mode))
        else:
            assert mode & 0o077 == 0, (path, oct(mode))
        checked += 1
    assert (root / "ADMIN_TOKEN").exists() and (root / "LOCK").exists()
    assert checked >= 5


def test_dump_filters_by_source(server):
    a, b = new_id("web"), new_id("be")
    assert server.post("/v1/track", {"userId": "u", "event": "e", "messageId": a},
                       write_key=WRITE_KEY).status == 200
    assert server.post("/v1/track", {"userId": "u", "event": "e", "messageId": b},
                       write_key=WRITE_KEY_2).status == 200
    r = run("dump", "--config", str(server.config_path), "--source", SOURCE)
    assert r.returncode == 0, r
    ids = [json.loads(line)["messageId"] for line in r.stdout.splitlines()]
    assert ids == [a]
    r2 = run("dump", "--config", str(server.config_path), "--source", SOURCE_2)
    assert [json.loads(line)["messageId"] for line in r2.stdout.splitlines()] == [b]
    everything = run("dump", "--config", str(server.config_path))
    assert [json.loads(line)["messageId"] for line in everything.stdout.splitlines()] == [a, b]
