"""The admin API's warehouse sync on the real binary (issue 13): POST
/api/v1/destinations/{name}/sync loads now what `switchyard warehouse sync` would, and is audited."""

from __future__ import annotations

import json

from test_admin import AdminServer
from test_admin_live import post_track


def test_sync_loads_a_sqlite_warehouse_now(tmp_path):
    server = AdminServer(tmp_path)
    try:
        server.write_config(extra=[
            "destinations:",
            "  - name: dw",
            "    type: sqlite",
            f"    settings: {{path: '{tmp_path / 'warehouse'}', sync_interval: 1h}}",
        ])
        editor = {"Authorization": "Bearer " +
                  server.cli("tokens", "create", "ed", "--role", "editor").stdout.strip()}
        viewer = {"Authorization": "Bearer " +
                  server.cli("tokens", "create", "vi", "--role", "viewer").stdout.strip()}
        server.start()
        for i in range(3):
            post_track(server, "Loaded", f"wh-m{i}")
        status, _, body = server.request("POST", "/api/v1/destinations/dw/sync", headers=viewer)
        assert status == 403, body
        status, _, body = server.request("POST", "/api/v1/destinations/dw/sync", headers=editor)
        assert status == 200, body
        answer = json.loads(body)
        assert answer["destination"] == "dw" and answer["loaded"] == 3, answer
        assert answer["report"]["rows"]["tracks"] == 3, answer
        # Loaded once: a second sync finds nothing new.
        status, _, body = server.request("POST", "/api/v1/destinations/dw/sync", headers=editor)
        assert status == 200 and json.loads(body)["loaded"] == 0, body
        status, _, body = server.request("POST", "/api/v1/destinations/nope/sync", headers=editor)
        assert status == 404, body
        status, _, body = server.request("POST", "/api/v1/destinations/dw/sync", {"now": True},
                                         headers=editor)
        assert status == 400 and json.loads(body)["error"]["field"] == "now", body
        audit = server.cli("audit", "--limit", "10").stdout
        actions = [json.loads(line)["action"] for line in audit.splitlines() if line.strip()]
        assert actions.count("warehouse.sync") == 2, audit
    finally:
        server.stop()
