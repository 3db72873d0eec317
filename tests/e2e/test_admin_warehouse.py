"""The admin API's warehouse routes on the real binary (issue 13): POST
/api/v1/destinations/{name}/sync loads now what `switchyard warehouse sync` would, and is audited;
GET /api/v1/warehouse shows the loads and the tables (SQLite and PostgreSQL); GET
/api/v1/overview shows events in and out."""

from __future__ import annotations

import json
import os
import time

from pg import pg_server  # noqa: F401  (the session's PostgreSQL)
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
        # GET /api/v1/warehouse: the loads this server ran, the tables as SQLite counts them.
        status, _, body = server.request("GET", "/api/v1/warehouse", headers=viewer)
        assert status == 200, body
        (wh,) = json.loads(body)["warehouses"]
        assert wh["destination"] == "dw" and wh["type"] == "sqlite", wh
        assert wh["rows_method"] == "max(rowid)", wh
        assert wh["loads"] and wh["loads"][-1]["events"] == 3, wh["loads"]
        assert wh["loads"][-1]["rows_per_table"]["tracks"] == 3, wh["loads"]
        assert wh["loads"][-1]["error"] is None, wh["loads"]
        tables = {t["name"]: t for t in wh["tables"]}
        assert tables["tracks"]["rows"] == 3 and tables["tracks"]["rows_loaded"] == 3, tables
        assert tables["tracks"]["source"] == "web", tables
        assert wh["tables_error"] is None and wh["loads_ok"] >= 1, wh
        assert wh["discards_in_warehouse"] == 0, wh
        status, _, body = server.request("GET", "/api/v1/warehouse?destination=dw", headers=viewer)
        assert status == 200 and len(json.loads(body)["warehouses"]) == 1, body
        status, _, body = server.request("GET", "/api/v1/warehouse?destination=nope",
                                         headers=viewer)
        assert status == 404, body
        # GET /api/v1/overview: the three events in, delivered to the warehouse, the log's bytes.
        status, _, body = server.request("GET", "/api/v1/overview", headers=viewer)
        assert status == 200, body
        ov = json.loads(body)
        assert len(ov["minutes"]) == 60 and ov["totals"]["in"] == 3, ov["totals"]
        assert ov["totals"]["out"] == 3, ov["totals"]
        (src,) = [s for s in ov["sources"] if s["name"] == "web"]
        assert src["events_since_start"] == 3 and src["last_event"], src
        (dest,) = ov["destinations"]
        assert dest["name"] == "dw" and dest["state"] == "ok" and dest["running"], dest
        assert dest["backlog_events"] == 0, dest
        assert ov["disk"]["log"]["bytes"] > 0 and ov["disk"]["log"]["complete"], ov["disk"]
        assert ov["disk"]["data_dir_free_bytes"] > 0, ov["disk"]
        assert ov["archive"]["enabled"] is False, ov["archive"]
        audit = server.cli("audit", "--limit", "10").stdout
        actions = [json.loads(line)["action"] for line in audit.splitlines() if line.strip()]
        assert actions.count("warehouse.sync") == 2, audit
    finally:
        server.stop()


def test_warehouse_route_on_postgresql_reads_its_statistics(tmp_path, pg_server):  # noqa: F811
    """GET /api/v1/warehouse on PostgreSQL: loads from the server's history, rows per table from
    pg_stat_user_tables (reported by PostgreSQL within a second or so of the commit)."""
    name = "db_" + os.urandom(4).hex()
    pg_server.psql("DO $$BEGIN CREATE ROLE switchyard LOGIN; EXCEPTION WHEN duplicate_object "
                   "THEN NULL; END$$")
    r = pg_server.psql(f'CREATE DATABASE "{name}" OWNER switchyard')
    assert r.returncode == 0, r.stderr.decode()
    dsn = f"postgresql://switchyard@127.0.0.1:{pg_server.port}/{name}"
    server = AdminServer(tmp_path)
    try:
        server.write_config(extra=[
            "destinations:",
            "  - name: pgw",
            "    type: postgres",
            f"    settings: {{dsn: '{dsn}', sync_interval: 100ms}}",
        ])
        viewer = {"Authorization": "Bearer " +
                  server.cli("tokens", "create", "vi", "--role", "viewer").stdout.strip()}
        server.start()
        for i in range(4):
            post_track(server, "Loaded", f"pg-m{i}")
        deadline = time.monotonic() + 30
        wh = None
        while time.monotonic() < deadline:
            status, _, body = server.request("GET", "/api/v1/warehouse", headers=viewer)
            assert status == 200, body
            (wh,) = json.loads(body)["warehouses"]
            tables = {t["name"]: t for t in wh["tables"]}
            if tables.get("tracks", {}).get("rows") == 4:
                break
            time.sleep(0.5)  # the estimate is cached for 10 s; statistics lag the commit
        assert wh["rows_method"] == "pg_stat_user_tables.n_live_tup", wh
        assert wh["tables_error"] is None, wh
        tables = {t["name"]: t for t in wh["tables"]}
        assert tables["tracks"]["rows"] == 4 and tables["tracks"]["rows_loaded"] == 4, tables
        assert tables["tracks"]["source"] == "web", tables
        assert sum(load["events"] for load in wh["loads"] if load["error"] is None) == 4, wh
    finally:
        server.stop()
