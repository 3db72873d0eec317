"""The admin API's replay routes on the real binary (issue 13): POST /api/v1/replays starts in the
server the replay `switchyard replay` runs, GET reports its progress to 100 %, the archived events
reach the destination again, and the routes check their input."""

from __future__ import annotations

import json
import time

from test_admin import AdminServer
from test_admin_live import post_track
from webhook_sink import WebhookSink, always, wait_for


def archived_events(server):
    r = server.cli("archive", "ls")
    assert r.returncode == 0, r.stderr
    total = 0
    for line in r.stdout.splitlines():
        parts = line.split()
        total += int(parts[3]) - int(parts[2]) + 1
    return total


def test_a_replay_started_through_the_api_reaches_100_percent(tmp_path):
    sink = WebhookSink(answer=always(200))
    server = AdminServer(tmp_path)
    try:
        server.write_config(extra=[
            "destinations:",
            "  - name: later",
            "    type: webhook",
            "    enabled: false",
            "    allow_private_network: true",
            f"    settings: {{url: '{sink.url()}'}}",
            "archive:",
            f"  {{store: local, path: '{tmp_path / 'archive'}', roll_size: 16KB, roll_age: 300ms}}",
        ])
        editor = {"Authorization": "Bearer " +
                  server.cli("tokens", "create", "ed", "--role", "editor").stdout.strip()}
        server.start()
        ids = [f"replay-m{i}" for i in range(20)]
        for mid in ids:
            post_track(server, "Replayed", mid)
        wait_for(lambda: archived_events(server) == 20, what="20 archived events")

        status, _, body = server.request("POST", "/api/v1/replays",
                                         {"destination": "later", "rate": 0}, headers=editor)
        assert status == 202, body
        replay = json.loads(body)
        assert replay["destination"] == "later" and replay["state"] in ("running", "done")
        deadline = time.monotonic() + 30
        while replay["state"] == "running":
            assert time.monotonic() < deadline, replay
            time.sleep(0.1)
            status, _, body = server.request("GET", "/api/v1/replays/" + replay["id"],
                                             headers=editor)
            assert status == 200, body
            replay = json.loads(body)
        assert replay["state"] == "done", replay
        assert replay["percent"] == 100 and replay["delivered"] == 20, replay
        assert replay["files_done"] == replay["files_total"] >= 1, replay
        assert sorted(sink.message_ids()) == sorted(ids)
        status, _, body = server.request("GET", "/api/v1/replays", headers=editor)
        assert [r["id"] for r in json.loads(body)["replays"]] == [replay["id"]]

        for bad, field in (({"destination": "nope"}, "destination"),
                           ({"destination": "later", "source": "nope"}, "source")):
            status, _, body = server.request("POST", "/api/v1/replays", bad, headers=editor)
            assert status == 404 and json.loads(body)["error"]["field"] == field, body
        status, _, body = server.request("POST", "/api/v1/replays",
                                         {"destination": "later", "from": "soon"}, headers=editor)
        assert status == 400 and json.loads(body)["error"]["field"] == "from", body
        status, _, body = server.request("POST", "/api/v1/replays/" + replay["id"] + "/cancel",
                                         headers=editor)
        assert status == 409, body  # done: nothing to cancel
    finally:
        server.stop()
        sink.stop()
