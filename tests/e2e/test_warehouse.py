"""The warehouse end to end, against the real binary, a real SQLite file and a real PostgreSQL 15
(started by tests/e2e/pg.py): Segment's tables and columns for a fixed set of events (golden,
the same file for both backends), schema evolution and discards, the same events twice, kill -9
in the middle of loads, `switchyard warehouse sync`, and /metrics."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conftest import WRITE_KEY, WRITE_KEY_2, Server, ServerFactory
from pg import pg_server  # noqa: F401  (session fixture: one PostgreSQL for the module)

E2E = Path(__file__).resolve().parent
REPO = E2E.parents[1]
EVENTS = REPO / "src" / "warehouse" / "testdata" / "events.ndjson"
GOLDEN = E2E / "testdata" / "warehouse.golden"

# Set by the server or at load time: masked in the golden dump.
VOLATILE = {"received_at", "timestamp", "uuid_ts"}


@dataclass
class WarehouseServer(Server):
    destinations: list[dict[str, Any]] = field(default_factory=list)
    raw_destinations: str = ""  # YAML written as is (the issue's own text)

    def write_config(self) -> None:
        super().write_config()
        with open(self.config_path, "a") as f:
            if self.raw_destinations:
                f.write(self.raw_destinations)
            elif self.destinations:
                f.write("destinations: " + json.dumps(self.destinations) + "\n")

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([self.bin, *args, "--config", str(self.config_path)],
                              capture_output=True, timeout=timeout, cwd=self.workdir)

    def delivered(self, destination: str) -> float:
        return self.metrics().get_value("switchyard_delivery_delivered_total",
                                        destination=destination)

    def wait_delivered(self, destination: str, n: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.delivered(destination) >= n:
                return
            time.sleep(0.05)
        raise AssertionError(f"{destination}: {self.delivered(destination)} of {n} delivered\n"
                             f"{self.log_text()}")


@pytest.fixture
def make_wh(tmp_path):
    make = ServerFactory(tmp_path, WarehouseServer, "wh")
    yield make
    make.kill_all()


@pytest.fixture
def pg_db(pg_server, request):  # noqa: F811
    """A fresh database owned by the role `switchyard`, as in the issue's config."""
    name = "db_" + os.urandom(4).hex()
    pg_server.psql("DO $$BEGIN CREATE ROLE switchyard LOGIN; EXCEPTION WHEN duplicate_object "
                   "THEN NULL; END$$")
    r = pg_server.psql(f'CREATE DATABASE "{name}" OWNER switchyard')
    assert r.returncode == 0, r.stderr.decode()
    return name, f"postgresql://switchyard@127.0.0.1:{pg_server.port}/{name}"


def golden_events() -> list[dict]:
    return [json.loads(line) for line in EVENTS.read_text().splitlines() if line.strip()]


def post_batch(server: Server, events: list[dict], write_key: str = WRITE_KEY) -> None:
    r = server.post("/v1/batch", {"batch": events}, write_key=write_key)
    assert r.status == 200, r


def track(mid: str, props: dict, event: str = "Order Completed") -> dict:
    return {"type": "track", "event": event, "messageId": mid, "userId": "u1",
            "properties": props}


# ---- reading both backends the same way --------------------------------------------------------

class SqliteReader:
    def __init__(self, path: Path):
        self.path = path

    def rows(self, sql: str) -> list[tuple]:
        con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def tables(self) -> list[str]:
        return [r[0] for r in self.rows("SELECT name FROM sqlite_master WHERE type='table' "
                                        "ORDER BY name")]

    def columns(self, table: str) -> list[tuple[str, str]]:
        kinds = {"TEXT": "text", "INTEGER": "integer", "REAL": "float", "BOOLEAN": "boolean",
                 "TIMESTAMP": "timestamp"}
        return [(r[1], kinds[r[2]]) for r in self.rows(f"PRAGMA table_info(\"{table}\")")]

    def values(self, table: str, cols: list[tuple[str, str]]) -> list[list[str | None]]:
        sel = ", ".join(f'"{c}"' for c, _ in cols)
        out = []
        for row in self.rows(f'SELECT {sel} FROM "{table}"'):
            vals = []
            for (c, kind), v in zip(cols, row):
                if v is None:
                    vals.append(None)
                elif kind == "boolean":
                    vals.append("true" if v else "false")
                elif kind in ("float", "integer"):
                    vals.append(repr(float(v)) if kind == "float" else str(v))
                else:
                    vals.append(str(v))
            out.append(vals)
        return out

    def count(self, sql: str) -> int:
        return self.rows(sql)[0][0]


class PgReader:
    def __init__(self, pg, db: str, schema: str):
        self.pg, self.db, self.schema = pg, db, schema

    def rows(self, sql: str) -> list[list[str | None]]:
        return self.pg.query("SET TIME ZONE 'UTC'; " + sql, db=self.db)

    def tables(self) -> list[str]:
        return [r[0] for r in self.rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            f"'{self.schema}' ORDER BY table_name")]

    def columns(self, table: str) -> list[tuple[str, str]]:
        kinds = {"text": "text", "bigint": "integer", "double precision": "float",
                 "boolean": "boolean", "timestamp with time zone": "timestamp"}
        return [(r[0], kinds[r[1]]) for r in self.rows(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = "
            f"'{self.schema}' AND table_name = '{table}' ORDER BY ordinal_position")]

    def values(self, table: str, cols: list[tuple[str, str]]) -> list[list[str | None]]:
        sel = []
        for c, kind in cols:
            if kind == "timestamp":
                sel.append(f"to_char(\"{c}\", 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')")
            else:
                sel.append(f'"{c}"::text')
        out = []
        for row in self.rows(f'SELECT {", ".join(sel)} FROM "{self.schema}"."{table}"'):
            vals = []
            for (c, kind), v in zip(cols, row):
                if v is None:
                    vals.append(None)
                elif kind == "boolean":
                    vals.append("true" if v == "true" else "false")
                elif kind == "float":
                    vals.append(repr(float(v)))
                else:
                    vals.append(v)
            out.append(vals)
        return out

    def count(self, sql: str) -> int:
        return int(self.rows(sql)[0][0])


def dump(reader) -> str:
    """Every table: its columns (sorted, with logical types), then its rows sorted."""
    out = []
    for table in reader.tables():
        cols = reader.columns(table)
        out.append(f"table {table}")
        out.append("  columns: " + ", ".join(f"{c}:{k}" for c, k in sorted(cols)))
        lines = []
        for vals in reader.values(table, cols):
            cells = []
            for (c, _), v in sorted(zip(cols, vals)):
                if v is None:
                    continue
                cells.append(f"{c}=<set>" if c in VOLATILE else f"{c}={json.dumps(v)}")
            lines.append("  row " + " ".join(cells))
        out += sorted(lines)
    return "\n".join(out) + "\n"


def expect_golden(got: str) -> None:
    if os.environ.get("SY_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(got)
        return
    assert got == GOLDEN.read_text(), f"golden {GOLDEN} differs (SY_UPDATE_GOLDEN=1 rewrites):\n{got}"


def sqlite_dest(workdir: Path, **settings) -> dict:
    return {"name": "dw", "type": "sqlite", "sources": ["web", "backend"],
            "settings": {"path": str(workdir / "warehouse"), "sync_interval": "100ms",
                         **settings}}


def pg_dest(dsn: str, **settings) -> dict:
    return {"name": "pg", "type": "postgres", "sources": ["web"],
            "settings": {"dsn": dsn, "sync_interval": "100ms", **settings}}


def reader_for(kind: str, server: WarehouseServer, pg, db: str | None):
    if kind == "sqlite":
        return SqliteReader(server.workdir / "warehouse" / "web.sqlite")
    return PgReader(pg, db, "web")


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, make_wh, tmp_path):
    """(kind, server, reader, destination name) for each backend, the server not yet started."""
    kind = request.param
    pg, db = None, None
    if kind == "postgres":
        pg = request.getfixturevalue("pg_server")
        db, dsn = request.getfixturevalue("pg_db")
        server = make_wh(start=False, ingest={"dedupe_window": "0s"})
        server.destinations = [pg_dest(dsn)]
        name = "pg"
    else:
        server = make_wh(start=False, ingest={"dedupe_window": "0s"})
        server.destinations = [sqlite_dest(server.workdir)]
        name = "dw"
    return kind, server, (lambda: reader_for(kind, server, pg, db)), name


# ---- tests ---------------------------------------------------------------------------------------

def test_golden_tables_columns_and_rows(backend):
    kind, server, reader, name = backend
    server.start()
    events = golden_events()
    post_batch(server, events)
    server.wait_delivered(name, len(events))
    expect_golden(dump(reader()))


def test_config_as_written_in_the_issue(make_wh, pg_server, pg_db):  # noqa: F811
    db, dsn = pg_db
    server = make_wh(start=False)
    port = pg_server.port
    server.raw_destinations = f"""destinations:
  - name: dw
    type: sqlite
    sources: [web, backend]
    settings:
      path: ./data/warehouse      # one database file per source: <path>/<source>.sqlite
      sync_interval: 30s
  - name: analytics-pg
    type: postgres
    sources: [web]
    settings:
      dsn: postgresql://switchyard@127.0.0.1:{port}/{db}   # one schema per source
      sync_interval: 30s
"""
    server.start()
    post_batch(server, [track("m-web", {"a": 1})])
    post_batch(server, [track("m-backend", {"a": 2})], write_key=WRITE_KEY_2)
    # sync_interval is 30 s: nothing is loaded yet; `warehouse sync` loads it now.
    time.sleep(0.5)
    assert not (server.workdir / "data" / "warehouse" / "web.sqlite").exists() or \
        SqliteReader(server.workdir / "data" / "warehouse" / "web.sqlite").count(
            "SELECT count(*) FROM sqlite_master WHERE name = 'tracks'") == 0
    r = server.cli("warehouse", "sync")
    assert r.returncode == 0, r.stderr.decode() + server.log_text()
    reports = {json.loads(line)["destination"]: json.loads(line)
               for line in r.stdout.decode().splitlines()}
    assert reports["dw"]["events"] == 2 and reports["dw"]["rows"]["tracks"] == 2
    assert reports["analytics-pg"]["events"] == 1
    web = SqliteReader(server.workdir / "data" / "warehouse" / "web.sqlite")
    backend_db = SqliteReader(server.workdir / "data" / "warehouse" / "backend.sqlite")
    assert web.rows("SELECT id, a FROM order_completed") == [("m-web", 1)]
    assert backend_db.rows("SELECT id, a FROM order_completed") == [("m-backend", 2)]
    pg = PgReader(pg_server, db, "web")
    assert pg.rows("SELECT id, a FROM web.order_completed") == [["m-web", "1"]]
    assert pg.tables() == ["discards", "order_completed", "tracks"]
    # Loaded once: a second sync finds nothing new.
    r = server.cli("warehouse", "sync", "--destination", "dw")
    assert r.returncode == 0, r.stderr.decode()
    assert json.loads(r.stdout.decode())["events"] == 0


def test_schema_evolution_and_discards(backend):
    kind, server, reader, name = backend
    server.start()
    post_batch(server, [track("e1", {"n": 1, "plan": "free"})])
    server.wait_delivered(name, 1)
    # A new property, integer → float, then values that fit no column.
    post_batch(server, [track("e2", {"n": 2.5, "plan": "pro", "seats": 3})])
    server.wait_delivered(name, 2)
    post_batch(server, [track("e3", {"n": "lots", "plan": 7, "seats": True})])
    server.wait_delivered(name, 3)
    r = reader()
    cols = dict(r.columns("order_completed"))
    assert cols["n"] in ("float", "integer" if kind == "sqlite" else "float")
    assert cols["plan"] == "text" and cols["seats"] == "integer"
    rows = {v[0]: v[1:] for v in r.values("order_completed", [("id", "text"), ("n", "float"),
                                                               ("plan", "text"),
                                                               ("seats", "integer")])}
    assert rows == {"e1": ["1.0", "free", None], "e2": ["2.5", "pro", "3"],
                    "e3": [None, "7", None]}
    discards = sorted(tuple(x) for x in r.values(
        "discards", [("table_name", "text"), ("column_name", "text"), ("column_value", "text"),
                     ("reason", "text"), ("row_id", "text")]))
    assert discards == [
        ("order_completed", "n", "lots", "cannot store a text in a float column", "e3"),
        ("order_completed", "seats", "true", "cannot store a boolean in a integer column", "e3"),
    ]
    m = server.metrics()
    assert m.get_value("switchyard_warehouse_discards_total", destination=name,
                       table="order_completed") == 2
    assert m.get_value("switchyard_warehouse_rows_loaded_total", destination=name,
                       table="order_completed") == 3
    assert m.get_value("switchyard_warehouse_loads_total", destination=name, result="ok") >= 3
    assert ("switchyard_warehouse_load_seconds_count", frozenset({("destination", name)})) in m
    assert ("switchyard_consumer_lag_seconds", frozenset({("cursor", f"dest.{name}")})) in m


# Event names whose table would be one the database or the loader owns (issue 18): SQLite's
# `sqlite_*`, PostgreSQL's `pg_*`, and the loaders' index names (SQLite `<table>_id_key`,
# `discards_key`; PostgreSQL `<table>_id_idx`, `discards_row_id`).
COLLIDING = {
    "sqlite_stat1": "_sqlite_stat1",
    "pg_class": "_pg_class",
    "Tracks Id Key": "tracks_id_key_",
    "Discards Key": "discards_key_",
    "Order Completed Id Key": "order_completed_id_key_",
    "Tracks Id Idx": "tracks_id_idx_",
    "Order Completed Id Idx": "order_completed_id_idx_",
    "Discards Row Id": "discards_row_id_",
}


def test_event_names_of_database_or_loader_objects_never_block_the_warehouse(backend):
    kind, server, reader, name = backend
    server.start()
    # Today each of these fails its load, is retried for the whole retry window, and holds
    # back every later event: they must get tables of their own at once.
    batch = [track("c-oc", {"n": 1})]
    batch += [track(f"c{i}", {"n": i}, event=ev) for i, ev in enumerate(COLLIDING)]
    post_batch(server, batch)
    post_batch(server, [track(f"after{i}", {"n": i}) for i in range(20)])
    server.wait_delivered(name, len(batch) + 20, timeout=30)
    r = reader()
    tables = set(r.tables())
    assert set(COLLIDING.values()) <= tables, tables
    for table in COLLIDING.values():
        assert r.count(f'SELECT count(*) FROM "{r.schema}"."{table}"'
                       if kind == "postgres" else f'SELECT count(*) FROM "{table}"') == 1, table
    tracks = "web.tracks" if kind == "postgres" else "tracks"
    assert r.count(f"SELECT count(*) FROM {tracks}") == len(batch) + 20
    m = server.metrics()
    assert m.get_value("switchyard_warehouse_loads_total", destination=name, result="failed") == 0
    assert server.metrics().get_value("switchyard_delivery_dead_lettered_total",
                                      destination=name) == 0


def test_an_event_the_database_refuses_goes_to_discards_and_the_rest_loads(backend):
    kind, server, reader, name = backend
    server.start()
    post_batch(server, [track("ok0", {"n": 1})])
    server.wait_delivered(name, 1)
    # Someone adds a rule by hand that one event breaks (SQLite: a trigger; PostgreSQL: CHECK).
    r = reader()
    if kind == "sqlite":
        con = sqlite3.connect(r.path, timeout=30)
        con.execute("CREATE TRIGGER refuse BEFORE INSERT ON order_completed WHEN NEW.n > 100 "
                    "BEGIN SELECT RAISE(ABORT, 'n too big'); END")
        con.commit()
        con.close()
    else:
        res = r.pg.psql("ALTER TABLE web.order_completed ADD CONSTRAINT small CHECK (n < 100)",
                        db=r.db)
        assert res.returncode == 0, res.stderr.decode()
    batch = [track(f"ok{i}", {"n": i}) for i in range(1, 30)]
    batch[17] = track("bad", {"n": 500})
    post_batch(server, batch)
    # The load is halved down to the refused event; everything else loads, nothing waits.
    server.wait_delivered(name, 30, timeout=30)
    schema = "web." if kind == "postgres" else ""
    assert r.count(f"SELECT count(*) FROM {schema}order_completed") == 29
    assert r.count(f"SELECT count(*) FROM {schema}tracks") == 29
    rows = r.rows(f"SELECT row_id, reason FROM {schema}discards")
    assert len(rows) == 1 and rows[0][0] == "bad", rows
    assert rows[0][1].startswith("the database refused the event: "), rows
    m = server.metrics()
    assert m.get_value("switchyard_warehouse_refused_events_total", destination=name) == 1
    assert m.get_value("switchyard_delivery_dead_lettered_total", destination=name) == 0


def test_past_max_event_tables_events_stay_in_tracks_counted_and_in_discards(backend):
    kind, server, reader, name = backend
    server.destinations[0]["settings"]["max_event_tables"] = 3
    server.start()
    events = [track(f"e{i}", {"n": i}, event=f"Event {i}") for i in range(6)]
    post_batch(server, events)
    server.wait_delivered(name, 6)
    r = reader()
    tracks = "web.tracks" if kind == "postgres" else "tracks"
    discards = "web.discards" if kind == "postgres" else "discards"
    assert r.count(f"SELECT count(*) FROM {tracks}") == 6
    assert set(r.tables()) == {"tracks", "discards", "event_0", "event_1", "event_2"}
    assert r.count(f"SELECT count(*) FROM {discards} WHERE reason LIKE "
                   "'event table limit (3) reached%'") == 3
    assert server.metrics().get_value("switchyard_warehouse_event_tables_capped_total",
                                      destination=name) == 3


def test_the_same_events_twice_load_once(backend):
    kind, server, reader, name = backend
    server.start()  # ingest dedupe is off: both copies reach the log and the warehouse
    batch = [track(f"dup-{i}", {"i": i}) for i in range(50)]
    post_batch(server, batch)
    post_batch(server, batch)
    server.wait_delivered(name, 100)
    r = reader()
    assert r.count("SELECT count(*) FROM %s" % ("tracks" if kind == "sqlite" else "web.tracks")) == 50
    table = "order_completed" if kind == "sqlite" else "web.order_completed"
    assert r.count(f"SELECT count(DISTINCT id) FROM {table}") == 50
    assert r.count(f"SELECT count(*) FROM {table}") == 50
    assert server.metrics().get_value("switchyard_warehouse_duplicate_rows_total",
                                      destination=name) >= 100


def test_kill_9_in_the_middle_of_loads_loses_and_duplicates_nothing(backend):
    kind, server, reader, name = backend
    server.destinations[0]["settings"].update({"sync_interval": "50ms", "max_events": 300})
    server.start()
    rng = random.Random(os.environ.get("SY_CRASH_SEED", "5"))
    total = 0
    for rnd in range(4):
        for b in range(10):
            post_batch(server, [track(f"k{rnd}-{b}-{i}", {"i": i, "round": rnd, "pad": "x" * 200})
                                for i in range(300)])
            total += 300
        # Loads of 300 events run back to back now: kill at a random moment among them.
        time.sleep(rng.uniform(0.05, 0.6))
        server.kill()
        server.start()
    deadline = time.monotonic() + 90
    table = "order_completed" if kind == "sqlite" else "web.order_completed"
    tracks = "tracks" if kind == "sqlite" else "web.tracks"
    while time.monotonic() < deadline:
        try:
            if reader().count(f"SELECT count(*) FROM {table}") >= total:
                break
        except Exception:  # noqa: BLE001 — not created yet
            pass
        time.sleep(0.2)
    r = reader()
    assert r.count(f"SELECT count(*) FROM {table}") == total
    assert r.count(f"SELECT count(DISTINCT id) FROM {table}") == total
    assert r.count(f"SELECT count(*) FROM {tracks}") == total
    assert r.count(f"SELECT count(DISTINCT id) FROM {tracks}") == total


def test_sync_when_the_server_is_stopped(make_wh):
    server = make_wh(start=False)
    server.destinations = [sqlite_dest(server.workdir, sync_interval="1h")]
    server.start()
    post_batch(server, [track(f"s{i}", {"i": i}) for i in range(20)])
    post_batch(server, [{"type": "identify", "messageId": "id1", "userId": "u1",
                         "traits": {"plan": "pro"}}])
    server.stop()  # an hour-long sync_interval: nothing loaded; stop keeps them in the log
    r = server.cli("warehouse", "sync", "--destination", "dw")
    assert r.returncode == 0, r.stderr.decode()
    report = json.loads(r.stdout.decode())
    assert report["events"] == 21
    assert report["rows"] == {"identifies": 1, "order_completed": 20, "tracks": 20, "users": 1}
    db = SqliteReader(server.workdir / "warehouse" / "web.sqlite")
    assert db.rows("SELECT id, plan FROM users") == [("u1", "pro")]
    # The cursor moved: the restarted server loads nothing again.
    server.start()
    time.sleep(0.5)
    assert server.metrics().get_value("switchyard_delivery_delivered_total", destination="dw") == 0
    assert db.count("SELECT count(*) FROM tracks") == 20


def test_sync_with_an_unknown_destination_is_a_usage_error(make_wh):
    server = make_wh(start=False)
    server.destinations = [sqlite_dest(server.workdir)]
    server.write_config()
    r = server.cli("warehouse", "sync", "--destination", "nope")
    assert r.returncode == 2
    assert b"no warehouse destination named 'nope'" in r.stderr


def test_postgres_down_then_back_loads_everything_once(make_wh, pg_server, pg_db):  # noqa: F811
    db, dsn = pg_db
    server = make_wh(start=False)
    server.destinations = [pg_dest(dsn)]
    server.start()
    post_batch(server, [track(f"a{i}", {"i": i}) for i in range(10)])
    server.wait_delivered("pg", 10)
    pg_server.stop()  # loads now fail and are retried with backoff; nothing is lost
    try:
        post_batch(server, [track(f"b{i}", {"i": i}) for i in range(10)])
        deadline = time.monotonic() + 20
        while server.metrics().get_value("switchyard_warehouse_loads_total", destination="pg",
                                         result="failed") < 1:
            assert time.monotonic() < deadline, server.log_text()
            time.sleep(0.1)
        assert server.delivered("pg") == 10
    finally:
        pg_server.start()
    server.wait_delivered("pg", 20, timeout=90)
    r = PgReader(pg_server, db, "web")
    assert r.count("SELECT count(*) FROM web.order_completed") == 20
    assert r.count("SELECT count(DISTINCT id) FROM web.tracks") == 20


def test_postgres_direct_copy_and_redelivery_load_each_id_once(make_wh, pg_server, pg_db):  # noqa: F811
    """A load is written in parts of 1,000 events, straight into the tables. A redelivery of
    loaded ids fails that COPY on the unique index; the load is written again with the id probe,
    which drops the loaded ids. Also a column that first appears in a later part."""
    db, dsn = pg_db
    server = make_wh(start=False, ingest={"dedupe_window": "0s"})
    server.destinations = [pg_dest(dsn, sync_interval="1s")]
    server.start()
    for start in range(0, 1500, 500):
        post_batch(server, [track(f"a{i}", {"i": i}) for i in range(start, start + 500)])
    server.wait_delivered("pg", 1500)
    # a1000..a1499 again (one part through staging), then new ids (direct), one with a new column.
    again = [track(f"a{i}", {"i": i}) for i in range(1000, 1500)]
    new = [track(f"b{i}", {"i": i, **({"late": "x"} if i == 2400 else {})}) for i in range(2500)]
    events = again + new
    for start in range(0, len(events), 500):
        post_batch(server, events[start:start + 500])
    server.wait_delivered("pg", 1500 + len(events))
    r = PgReader(pg_server, db, "web")
    for table in ("web.tracks", "web.order_completed"):
        assert r.count(f"SELECT count(*) FROM {table}") == 4000
        assert r.count(f"SELECT count(DISTINCT id) FROM {table}") == 4000
    assert r.rows("SELECT id, late FROM web.order_completed WHERE late IS NOT NULL") == [
        ["b2400", "x"]]
    assert r.rows("SELECT i FROM web.order_completed WHERE id = 'b17'") == [["17"]]
    m = server.metrics()
    assert m.get_value("switchyard_warehouse_duplicate_rows_total", destination="pg") == 1000
    assert m.get_value("switchyard_warehouse_loads_total", destination="pg", result="failed") == 0


def test_postgres_id_committed_by_a_concurrent_loader_is_skipped_in_the_same_load(
        make_wh, pg_server, pg_db):  # noqa: F811
    """Another session inserts an id of the batch and commits only after the loader started
    copying straight into the table: the unique index fails the direct COPY, the loader rolls
    back and writes the transaction again with the id probe (which now finds it) — in the same
    load, with no duplicate and no failed load."""
    db, dsn = pg_db
    server = make_wh(start=False)
    server.destinations = [pg_dest(dsn)]
    server.start()
    post_batch(server, [track("first", {"i": 0})])  # creates the tables
    server.wait_delivered("pg", 1)
    other = subprocess.Popen(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", pg_server.dsn(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        other.stdin.write("BEGIN; INSERT INTO web.tracks (id, event) VALUES ('c5', 'other');\n")
        other.stdin.flush()

        def sessions(where: str) -> int:
            return int(pg_server.query(
                f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' AND {where}")[0][0])

        deadline = time.monotonic() + 20
        while sessions("state = 'idle in transaction'") < 1:
            assert time.monotonic() < deadline and other.poll() is None, other.stderr.read()
            time.sleep(0.05)
        post_batch(server, [track(f"c{i}", {"i": i}) for i in range(10)])
        # The loader's COPY waits for the other session's c5 (its unique check).
        while sessions("wait_event_type = 'Lock' AND query LIKE 'COPY%'") < 1:
            assert time.monotonic() < deadline, server.log_text()
            time.sleep(0.05)
        other.stdin.write("COMMIT;\n")
        other.stdin.close()
        assert other.wait(timeout=20) == 0, other.stderr.read()
    finally:
        if other.poll() is None:
            other.kill()
    server.wait_delivered("pg", 11)
    r = PgReader(pg_server, db, "web")
    assert r.count("SELECT count(*) FROM web.tracks") == 11
    assert r.count("SELECT count(DISTINCT id) FROM web.tracks") == 11
    assert r.rows("SELECT event FROM web.tracks WHERE id = 'c5'") == [["other"]]
    assert r.count("SELECT count(*) FROM web.order_completed") == 11
    m = server.metrics()
    assert m.get_value("switchyard_warehouse_loads_total", destination="pg", result="failed") == 0
    assert m.get_value("switchyard_warehouse_duplicate_rows_total", destination="pg") == 1
    assert m.get_value("switchyard_warehouse_rows_loaded_total", destination="pg",
                       table="tracks") == 10


# ---- a full disk (issue 18) ----------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 40 MiB tmpfs (root only): the log and the warehouse share it, as on a small server."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mnt)],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(path: Path) -> None:
    """Writes zeros to `path` until the disk is full."""
    chunk = b"\0" * (1 << 20)
    with open(path, "wb", buffering=0) as f:
        for size in (1 << 20, 1 << 12, 1):
            while True:
                try:
                    f.write(chunk[:size])
                except OSError:
                    break


def test_full_disk_the_warehouse_backs_off_and_ingest_recovers_first(make_wh, small_disk):
    server = make_wh(start=False, ingest={"dedupe_window": "0s"},
                     log={"segment_size": "1MB", "preallocate": 0, "reserve": "4MB"})
    server.data_dir = small_disk / "data"
    server.destinations = [{"name": "dw", "type": "sqlite", "sources": ["web"],
                            "settings": {"path": str(small_disk / "warehouse"),
                                         "sync_interval": "50ms"}}]
    server.start()
    post_batch(server, [track(f"a{i}", {"i": i}) for i in range(10)])
    server.wait_delivered("dw", 10)
    assert server.metrics().get_value("switchyard_log_reserve_bytes") == 4 << 20
    filler = small_disk / "filler"
    fill(filler)
    # The disk is full. Ingest goes on on the log's reserve; the warehouse cannot load.
    body = [track(f"b{i}", {"pad": "x" * 2000}) for i in range(50)]
    r = server.post("/v1/batch", {"batch": body})
    assert r.status == 200, (r, server.log_text())
    assert server.metrics().get_value("switchyard_log_reserve_bytes") == 0
    failed0 = server.metrics().get_value("switchyard_warehouse_loads_total", destination="dw",
                                         result="failed")
    time.sleep(3)
    failed = server.metrics().get_value("switchyard_warehouse_loads_total", destination="dw",
                                        result="failed") - failed0
    # The failure backoff: a handful of attempts in 3 s (before: ~500 a second, each logged).
    assert failed <= 6, failed
    assert server.log_text().count("load failed") <= 10
    # Use up the reserve too: ingest answers 503, and keeps nothing it did not acknowledge.
    accepted = 50
    for i in range(200):
        r = server.post("/v1/batch", {"batch": [track(f"c{i}-{k}", {"pad": "x" * 2000})
                                                for k in range(50)]})
        if r.status == 503:
            break
        assert r.status == 200, r
        accepted += 50
    else:
        raise AssertionError("the disk never filled")
    # Space is freed: ingest is the first to get it (the warehouse waits out its backoff).
    filler.unlink()
    r = server.post("/v1/batch", {"batch": [track("d0", {"i": 0})]})
    assert r.status == 200, (r, server.log_text())
    accepted += 1
    # And the warehouse catches up: everything acknowledged is loaded once.
    server.wait_delivered("dw", 10 + accepted, timeout=120)
    db = SqliteReader(small_disk / "warehouse" / "web.sqlite")
    assert db.count("SELECT count(*) FROM tracks") == 10 + accepted
