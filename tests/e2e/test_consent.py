"""Consent, server side, through the real server with the real @segment/analytics-node: a
destination with `consent_categories` receives only events whose
`context.consent.categoryPreferences` grants every one of them; an event without preferences
follows its source's `consent.default`; what consent kept from a destination is counted as
filtered (rule "consent") and stays out of a replay into it too; a warehouse without categories
keeps the preferences as columns."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import WRITE_KEY, WRITE_KEY_2, ServerFactory, new_id
from test_archive import LOCAL, ArchiveServer, hook
from webhook_sink import WebhookSink, wait_for

E2E = Path(__file__).resolve().parent

# Sends the given calls with the real library and flushes: the last argument = {host, writeKey, calls}.
SEND_JS = r"""
const { Analytics } = require('@segment/analytics-node');
const opts = JSON.parse(process.argv[process.argv.length - 1]);
const a = new Analytics({ writeKey: opts.writeKey, host: opts.host, flushAt: 50,
                          flushInterval: 200, maxRetries: 3 });
const errors = [];
a.on('error', (e) => errors.push(String((e && e.code) || e)));
for (const c of opts.calls) a.track(c);
a.closeAndFlush().then(() => { console.log(JSON.stringify({ errors })); });
"""


@dataclass
class ConsentServer(ArchiveServer):
    """The archive suite's server, with source `backend` denying consent by default."""

    def write_config(self) -> None:
        super().write_config()
        text = self.config_path.read_text()
        key_line = f"    write_key: {WRITE_KEY_2}\n"
        assert key_line in text
        self.config_path.write_text(
            text.replace(key_line, key_line + "    consent: {default: deny}\n", 1))


@pytest.fixture
def sinks():
    made: list[WebhookSink] = []

    def make() -> WebhookSink:
        s = WebhookSink()
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


@pytest.fixture
def node_bin() -> str:
    node = shutil.which("node")
    if not node:
        pytest.fail("node not found: run scripts/install-deps.sh test")
    if not (E2E / "node_modules" / "@segment" / "analytics-node").is_dir():
        pytest.fail("@segment/analytics-node missing: run scripts/install-test-deps.sh")
    return node


def send(node: str, server: ArchiveServer, write_key: str, calls: list[dict]) -> None:
    opts = {"host": f"http://127.0.0.1:{server.port}", "writeKey": write_key, "calls": calls}
    p = subprocess.run([node, "-e", SEND_JS, "--", json.dumps(opts)], cwd=E2E,
                       capture_output=True, timeout=60)
    assert p.returncode == 0, (p.stdout.decode(), p.stderr.decode())
    assert json.loads(p.stdout.decode().strip().splitlines()[-1])["errors"] == []


def track(mid: str, prefs: dict | None) -> dict:
    call = {"userId": "u-" + mid, "event": "Viewed", "messageId": mid, "properties": {"n": 1}}
    if prefs is not None:
        call["context"] = {"consent": {"categoryPreferences": prefs}}
    return call


def test_consent_categories_route_cloud_mode_replay_and_warehouse(tmp_path, sinks, node_bin):
    ads_sink, all_sink, later_sink = sinks(), sinks(), sinks()
    ads = {**hook("ads", ads_sink.url()), "consent_categories": ["advertising", "analytics"]}
    later = {**hook("later", later_sink.url(), enabled=False),
             "consent_categories": ["advertising", "analytics"]}
    dw = {"name": "dw", "type": "sqlite",
          "settings": {"path": str(tmp_path / "warehouse"), "sync_interval": "100ms"}}
    make = ServerFactory(tmp_path, ConsentServer, "consent")
    try:
        server = make(archive=LOCAL, destinations=[ads, hook("all", all_sink.url()), later, dw])
        run = new_id("consent")
        granted = [f"{run}-granted-{i}" for i in range(6)]
        partial = [f"{run}-partial-{i}" for i in range(4)]  # analytics only
        refused = [f"{run}-refused-{i}" for i in range(4)]  # everything false
        silent_web = [f"{run}-silent-web-{i}" for i in range(3)]  # no preferences: grant
        silent_backend = [f"{run}-silent-be-{i}" for i in range(3)]  # no preferences: deny
        granted_backend = [f"{run}-granted-be-{i}" for i in range(2)]
        both = {"advertising": True, "analytics": True}
        send(node_bin, server, WRITE_KEY,
             [track(m, both) for m in granted] +
             [track(m, {"analytics": True}) for m in partial] +
             [track(m, {"advertising": False, "analytics": False}) for m in refused] +
             [track(m, None) for m in silent_web])
        send(node_bin, server, WRITE_KEY_2,
             [track(m, None) for m in silent_backend] + [track(m, both) for m in granted_backend])
        everything = granted + partial + refused + silent_web + silent_backend + granted_backend
        allowed = granted + silent_web + granted_backend

        # The destination without categories gets everything; the one with them only what
        # consent grants, and the rest is counted as filtered by consent.
        wait_for(lambda: len(all_sink.events()) >= len(everything), 20, "all delivered")
        assert Counter(all_sink.message_ids()) == Counter(everything)
        wait_for(lambda: server.metric("switchyard_delivery_consent_filtered_total",
                                       destination="ads") == len(everything) - len(allowed),
                 20, "consent filtered counted")
        wait_for(lambda: len(ads_sink.events()) >= len(allowed), 20, "ads delivered")
        assert Counter(ads_sink.message_ids()) == Counter(allowed)
        assert server.metric("switchyard_delivery_consent_filtered_total", destination="all") == 0

        # The warehouse (no categories) keeps the preferences as columns.
        wait_for(lambda: server.metric("switchyard_consumer_lag_events", cursor="dest.dw") == 0,
                 20, "warehouse caught up")
        db = tmp_path / "warehouse" / "web.sqlite"
        wait_for(lambda: db.exists(), 20, "warehouse file")

        def warehouse_rows() -> dict:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            try:
                return dict(con.execute(
                    "SELECT id, context_consent_category_preferences_advertising FROM tracks"))
            finally:
                con.close()

        wait_for(lambda: len(warehouse_rows()) == len(granted + partial + refused + silent_web),
                 20, "warehouse rows")
        rows = warehouse_rows()
        assert all(rows[m] in (1, "true", True) for m in granted)
        assert all(rows[m] in (0, "false", False) for m in refused)
        assert all(rows[m] is None for m in silent_web)

        # A replay into a destination with the same categories sends exactly what consent
        # allows: the events denied live stay denied.
        wait_for(lambda: server.metric("switchyard_archive_events_total") == len(everything),
                 20, "archived")
        wait_for(lambda: server.metric("switchyard_consumer_lag_events", cursor="archive") == 0,
                 5, "archive caught up")
        server.stop()
        summary = server.replay("--destination", "later")
        assert summary["delivered"] == len(allowed), summary
        assert Counter(later_sink.message_ids()) == Counter(allowed)
    finally:
        make.kill_all()


def test_consent_keys_are_checked_at_config_time(tmp_path):
    make = ServerFactory(tmp_path, ConsentServer, "consent")
    try:
        server = make(start=False, archive={},
                      destinations=[{**hook("ads", "http://127.0.0.1:9/"),
                                     "consent_categories": ["advertising", "advertising"]}])
        server.write_config()
        r = subprocess.run([server.bin, "check-config", str(server.config_path)],
                           capture_output=True, timeout=60)
        assert r.returncode != 0
        assert "destinations[0].consent_categories: category 'advertising' is listed twice" in \
            r.stderr.decode() + r.stdout.decode()
    finally:
        make.kill_all()
