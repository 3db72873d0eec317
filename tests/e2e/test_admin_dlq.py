"""The admin API's dead-letter routes on the real binary (issue 13): a webhook receiver that
refuses fills the DLQ, GET pages it (payloads only with view_payloads), POST …/redrive sends the
selected letters again once the receiver recovers, DELETE purges — the store `switchyard dlq`
reads, changed while the server runs."""

from __future__ import annotations

import json
import subprocess

from conftest import switchyard_bin
from test_admin import AdminServer
from test_admin_live import post_track
from webhook_sink import WebhookSink, always, wait_for


def test_dead_letters_listed_redriven_and_purged_through_the_api(tmp_path):
    sink = WebhookSink(answer=always(400, b'{"error":"bad payload"}'))
    server = AdminServer(tmp_path)
    try:
        server.write_config(extra=[
            "destinations:",
            "  - name: hook",
            "    type: webhook",
            "    allow_private_network: true",
            "    batch: {max_events: 1, max_wait: 20ms}",
            f"    settings: {{url: '{sink.url()}'}}",
        ])
        editor = {"Authorization": "Bearer " +
                  server.cli("tokens", "create", "ed", "--role", "editor").stdout.strip()}
        viewer = {"Authorization": "Bearer " +
                  server.cli("tokens", "create", "vi", "--role", "viewer").stdout.strip()}
        server.start()
        ids = [f"dlq-m{i}" for i in range(5)]
        for mid in ids:
            post_track(server, "Refused", mid)

        def page(query="", headers=editor):
            status, _, body = server.request("GET", "/api/v1/destinations/hook/dlq" + query,
                                             headers=headers)
            assert status == 200, body
            return json.loads(body)

        wait_for(lambda: page()["total"] == 5, what="5 dead letters")
        # The file's order (when each was dead-lettered), paged by next_after.
        order = [e["message_id"] for e in page()["entries"]]
        assert sorted(order) == ids
        first = page("?limit=2")
        assert [e["message_id"] for e in first["entries"]] == order[:2]
        e = first["entries"][0]
        assert e["source"] == "web" and e["reason"] == "http 400" and e["attempts"] == 1, e
        assert e["last_status"] == 400 and e["payload"]["messageId"] == order[0], e
        assert e["payload"]["properties"] == {"plan": "pro"}, e
        second = page("?limit=2&after=" + first["next_after"])
        assert [e["message_id"] for e in second["entries"]] == order[2:4]
        last = page("?limit=2&after=" + second["next_after"])
        assert [e["message_id"] for e in last["entries"]] == order[4:]
        assert last["next_after"] is None
        assert all("payload" not in e for e in page(headers=viewer)["entries"])
        by_mid = {e["message_id"]: e["id"] for e in page()["entries"]}

        # The receiver recovers: redrive two selected letters, purge one, redrive the rest.
        sink.answer = always(200)
        status, _, body = server.request("POST", "/api/v1/destinations/hook/dlq/redrive",
                                         {"ids": [by_mid[ids[0]], by_mid[ids[1]], "nope"]},
                                         headers={**editor, "Content-Type": "application/json"})
        assert status == 200, body
        assert json.loads(body) == {"delivered": 2, "kept": 0, "dropped": 0, "not_found": ["nope"]}
        status, _, body = server.request("POST", "/api/v1/destinations/hook/dlq/redrive", {},
                                         headers=viewer)
        assert status == 403, body
        status, _, body = server.request("DELETE", "/api/v1/destinations/hook/dlq",
                                         {"ids": [by_mid[ids[2]]]}, headers=editor)
        assert status == 200 and json.loads(body)["purged"] == 1, body
        assert sorted(e["message_id"] for e in page()["entries"]) == ids[3:]
        status, _, body = server.request("POST", "/api/v1/destinations/hook/dlq/redrive",
                                         headers=editor)
        assert status == 200 and json.loads(body)["delivered"] == 2, body
        assert page()["total"] == 0
        delivered = [e["messageId"] for r in sink.requests()[5:] for e in r.events()]
        assert sorted(delivered) == sorted([ids[0], ids[1], ids[3], ids[4]])

        # The CLI reads the same store: empty now. Every change is in the audit log.
        r = subprocess.run([switchyard_bin(), "dlq", "list", "--destination", "hook", "--config",
                            str(server.config)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and r.stdout.strip() == "", r.stdout + r.stderr
        audit = server.cli("audit", "--limit", "10").stdout
        actions = [json.loads(line)["action"] for line in audit.splitlines() if line.strip()]
        assert actions.count("dlq.redrive") == 2 and actions.count("dlq.purge") == 1, audit

        status, _, body = server.request("GET", "/api/v1/destinations/nope/dlq", headers=editor)
        assert status == 404, body
        status, _, body = server.request("GET", "/api/v1/destinations/hook/dlq?after=zz",
                                         headers=editor)
        assert status == 400 and json.loads(body)["error"]["field"] == "after", body
    finally:
        server.stop()
        sink.stop()
