"""Archive and replay end to end, against the real binary: every stored event lands in gzip
NDJSON files (local directory or a real S3-compatible server, SeaweedFS, that verifies SigV4
signatures); `switchyard archive ls` lists them; `switchyard replay` sends a range of them to one
destination through the delivery framework (webhook sink here) exactly once per run, resumably;
kill -9 during uploads neither loses nor duplicates archived events; a wrong S3 secret is refused,
retried, reported, and the log keeps the events."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, SOURCE, SOURCE_2, WRITE_KEY_2, Server, ServerFactory, free_port, new_id
from pg import pg_server  # noqa: F401  (session fixture: a real PostgreSQL 15)
from webhook_sink import WebhookSink, wait_for


@dataclass
class ArchiveServer(Server):
    """Server with `archive:` and `destinations:` sections (JSON, which YAML reads as is)."""

    archive: dict[str, Any] = field(default_factory=dict)
    destinations: list[dict[str, Any]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def write_config(self) -> None:
        super().write_config()
        with open(self.config_path, "a") as f:
            if self.archive:
                f.write("archive: " + json.dumps(self.archive) + "\n")
            if self.destinations:
                f.write("destinations: " + json.dumps(self.destinations) + "\n")

    def start(self, timeout: float = 15.0) -> None:
        old = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        try:
            super().start(timeout)
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def cli(self, *args: str, timeout: float = 120,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([self.bin, *args, "--config", str(self.config_path)],
                              capture_output=True, timeout=timeout, cwd=self.workdir,
                              env={**os.environ, **self.env, **(env or {})})

    def archive_ls(self, *args: str) -> list[dict]:
        r = self.cli("archive", "ls", *args)
        assert r.returncode == 0, r.stderr.decode()
        rows = []
        for line in r.stdout.decode().splitlines():
            hour, source, first, last, size, key = line.split()
            rows.append({"hour": hour, "source": source, "first": int(first), "last": int(last),
                         "size": int(size), "key": key})
        return rows

    def archived_events(self) -> list[dict]:
        """Every event in the local archive, in listing order (per source, by offset)."""
        root = Path(self.archive["path"])
        if not root.is_absolute():
            root = self.workdir / root
        out = []
        for row in self.archive_ls():
            with gzip.open(root / row["key"], "rt") as f:
                out += [json.loads(line) for line in f]
        return out

    def replay(self, *args: str, timeout: float = 120) -> dict:
        r = self.cli("replay", *args, timeout=timeout)
        assert r.returncode == 0, f"replay rc={r.returncode}: {r.stderr.decode()}"
        return json.loads(r.stdout.decode().strip().splitlines()[-1])

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics().get_value(name, **labels)


def hook(name: str, url: str, enabled: bool = True, batch: int = 100) -> dict:
    wait = "20ms" if batch <= 100 else "1s"
    return {"name": name, "type": "webhook", "enabled": enabled, "allow_private_network": True,
            "batch": {"max_events": batch, "max_wait": wait},
            "settings": {"url": url, "batch": True, "max_events": batch}}


@pytest.fixture
def sinks():
    made: list[WebhookSink] = []

    def make(**kw) -> WebhookSink:
        s = WebhookSink(**kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


@pytest.fixture
def make_archive_server(tmp_path):
    make = ServerFactory(tmp_path, ArchiveServer, "archive")

    def make_archive(archive: dict, destinations: list[dict] | None = None, start: bool = True,
                     env: dict[str, str] | None = None) -> ArchiveServer:
        return make(start=start, archive=archive, destinations=destinations or [], env=env or {})

    yield make_archive
    make.kill_all()


def post_events(server: Server, n: int, write_key: str | None = None, **extra: Any) -> list[str]:
    ids = [new_id() for _ in range(n)]
    for start in range(0, n, 100):
        batch = [{"type": "track", "userId": f"u{i % 7}", "event": "Order Completed",
                  "messageId": mid, "properties": {"n": start + i, "price": 12.5}, **extra}
                 for i, mid in enumerate(ids[start:start + 100])]
        kw = {"write_key": write_key} if write_key else {}
        r = server.post("/v1/batch", {"batch": batch}, **kw)
        assert r.status == 200, r
    return ids


def without_integrations(e: dict) -> dict:
    return {k: v for k, v in e.items() if k != "integrations"}


LOCAL = {"store": "local", "path": "./data/archive", "roll_size": "16KB", "roll_age": "300ms"}


# ---- local store -----------------------------------------------------------------------------


def test_archive_replay_round_trip_equals_the_original_events(make_archive_server, sinks):
    sink = sinks()
    # The destination is disabled: live delivery never runs, replay still works. A batch of up
    # to 1000 events is one request, a contiguous run of what replay fed the stream.
    server = make_archive_server(LOCAL, [hook("later", sink.url(), enabled=False, batch=1000)])
    web = post_events(server, 300)
    backend = post_events(server, 120, write_key=WRITE_KEY_2, context={"library": {"name": "x"}})
    wait_for(lambda: server.metric("switchyard_archive_events_total") == 420, 20, "archived")
    assert server.metric("switchyard_archive_files_total") >= 4  # 16 KB files, two sources
    # The archiver counts a file's events when it is uploaded and commits its cursor just after.
    wait_for(lambda: server.metric("switchyard_consumer_lag_events", cursor="archive") == 0, 5, "archive caught up")
    assert server.metric("switchyard_archive_bytes_total") > 0
    rows = server.archive_ls()
    assert {r["source"] for r in rows} == {SOURCE, SOURCE_2}
    assert len({r["key"].split("/")[0] for r in rows}) > 1  # spread over several prefixes
    assert server.archive_ls("--source", SOURCE_2) == [r for r in rows if r["source"] == SOURCE_2]
    archived = server.archived_events()
    stored = server.dump()  # stops the server
    # The archive holds every stored event exactly as stored.
    assert sorted(archived, key=lambda e: e["messageId"]) == sorted(stored, key=lambda e: e["messageId"])
    assert len(archived) == 420 and not sink.requests()

    summary = server.replay("--destination", "later")
    assert summary["events"] == 420 and summary["delivered"] == 420, summary
    got = sink.events()
    assert len(got) == 420
    assert Counter(e["messageId"] for e in got) == Counter(web + backend)  # once each
    # Same events, messageId and timestamps kept; only integrations rewritten.
    by_id = {e["messageId"]: e for e in stored}
    for e in got:
        assert e["integrations"] == {"All": False, "later": True}
        assert without_integrations(e) == without_integrations(by_id[e["messageId"]])
    # In receivedAt order across sources: each request carries a contiguous run of the replay's
    # feed (requests of concurrent rounds may arrive in any order).
    runs = sorted(([e["receivedAt"] for e in r.events()] for r in sink.requests()),
                  key=lambda run: run[0])
    times = [t for run in runs for t in run]
    assert times == sorted(times)

    # A second run replays the range again, once more each.
    again = server.replay("--destination", "later")
    assert again["delivered"] == 420 and not again["resumed"]
    assert Counter(sink.message_ids()) == Counter({m: 2 for m in web + backend})


def test_replay_selects_by_time_and_source_and_dry_run_sends_nothing(make_archive_server, sinks):
    sink = sinks()
    server = make_archive_server(LOCAL, [hook("hook", sink.url())])
    early = post_events(server, 50)
    time.sleep(1.2)
    cut = time.time()
    time.sleep(0.05)
    late = post_events(server, 40)
    late_backend = post_events(server, 30, write_key=WRITE_KEY_2)
    wait_for(lambda: server.metric("switchyard_archive_events_total") == 120, 20, "archived")
    # live delivery got everything once; replays below come on top
    wait_for(lambda: len(sink.events()) == 120, 20, "live delivery")
    server.stop()
    live = len(sink.events())
    from_cut = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(cut)) + f".{int(cut * 1000) % 1000:03d}Z"

    r = server.cli("replay", "--destination", "hook", "--from", from_cut, "--dry-run")
    assert r.returncode == 0, r.stderr.decode()
    assert "dry run: would replay" in r.stdout.decode() and "nothing was sent" in r.stdout.decode()
    assert len(sink.events()) == live

    s = server.replay("--destination", "hook", "--from", from_cut)
    assert s["delivered"] == 70, s
    replayed = sink.message_ids()[live:]
    assert Counter(replayed) == Counter(late + late_backend)

    s = server.replay("--destination", "hook", "--source", SOURCE_2)
    assert s["delivered"] == 30
    assert Counter(sink.message_ids()[live + 70:]) == Counter(late_backend)

    s = server.replay("--destination", "hook", "--to", from_cut, "--source", SOURCE)
    assert Counter(sink.message_ids()[live + 100:]) == Counter(early)
    assert set(early).isdisjoint(late)

    bad = server.cli("replay", "--destination", "nope")
    assert bad.returncode == 2 and b"no destination named" in bad.stderr


def test_replay_interrupted_resumes_where_it_stopped(make_archive_server, sinks):
    sink = sinks()
    server = make_archive_server(LOCAL, [hook("slow", sink.url(), enabled=False)])
    ids = post_events(server, 600)
    wait_for(lambda: server.metric("switchyard_archive_events_total") == 600, 20, "archived")
    server.stop()
    # --rate holds the replay to ~300 events/s; SIGINT after about a third of them.
    p = subprocess.Popen([server.bin, "replay", "--config", str(server.config_path),
                          "--destination", "slow", "--rate", "300"], cwd=server.workdir,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: len(sink.events()) >= 150, 20, "part of the replay")
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 130, err.decode()
    assert b"run the same command again" in err
    first = sink.message_ids()
    assert 150 <= len(first) < 600
    metrics_text = (server.data_dir / "replay" / "slow.progress").read_text()
    assert "state interrupted" in metrics_text
    s = server.replay("--destination", "slow")
    assert s["resumed"], s
    # Stopped gracefully: every event exactly once over the two runs, and rate-limited at first.
    assert Counter(sink.message_ids()) == Counter(ids)


def test_replay_after_kill9_delivers_everything(make_archive_server, sinks):
    sink = sinks()
    server = make_archive_server(LOCAL, [hook("h", sink.url(), enabled=False)])
    ids = post_events(server, 500)
    wait_for(lambda: server.metric("switchyard_archive_events_total") == 500, 20, "archived")
    server.stop()
    p = subprocess.Popen([server.bin, "replay", "--config", str(server.config_path),
                          "--destination", "h", "--rate", "400"], cwd=server.workdir,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: len(sink.events()) >= 100, 20, "part of the replay")
    p.kill()
    p.wait()
    s = server.replay("--destination", "h")
    assert s["resumed"]
    got = Counter(sink.message_ids())
    assert set(got) == set(ids)  # at least once each
    # duplicates only from the stream's in-flight window at the kill
    assert sum(got.values()) - len(ids) <= 200


def test_kill9_during_uploads_loses_and_duplicates_nothing(make_archive_server):
    server = make_archive_server({**LOCAL, "roll_size": "4KB", "roll_age": "100ms"})
    posted: list[str] = []
    for round_ in range(6):
        posted += post_events(server, 200)
        # kill -9 while files are being rolled and written (4 KB files: ~40 per round)
        time.sleep(0.02 * round_)
        server.kill()
        server.start()
    wait_for(lambda: server.metric("switchyard_consumer_lag_events", cursor="archive") == 0, 20, "archive caught up")
    server.stop()
    archived = Counter(e["messageId"] for e in server.archived_events())
    assert archived == Counter(posted)  # every event exactly once
    # no stray temp files left visible to listings
    rows = server.archive_ls()
    assert all(r["key"].endswith(".ndjson.gz") for r in rows)


def test_metrics_show_replay_progress(make_archive_server, sinks):
    sink = sinks()
    server = make_archive_server(LOCAL, [hook("m", sink.url(), enabled=False)])
    post_events(server, 50)
    wait_for(lambda: server.metric("switchyard_archive_events_total") == 50, 20, "archived")
    r = server.cli("replay", "--destination", "m")
    assert r.returncode == 0, r.stderr.decode()
    # The server publishes what the replay process wrote within a second (never on a scrape).
    wait_for(lambda: server.metric("switchyard_replay_events_done", destination="m") == 50, 5,
             "replay progress published")
    m = server.metrics()
    assert m.get_value("switchyard_replay_running", destination="m") == 0
    assert "switchyard_archive_upload_seconds_count" in m.names()


def test_config_errors_name_file_line_and_key(tmp_path):
    from conftest import switchyard_bin
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("version: 1\ndata_dir: ./d\nsources:\n  - name: web\n    write_key: k\n"
                   "archive:\n  store: s3\n  path: ./x\n  roll_size: lots\n  colour: red\n")
    r = subprocess.run([switchyard_bin(), "check-config", str(cfg)], capture_output=True)
    assert r.returncode == 2
    err = r.stderr.decode()
    assert f"{cfg}:7: archive.bucket: required with store: s3" in err
    assert f"{cfg}:8: archive.path: only used with store: local" in err
    assert f"{cfg}:9: archive.roll_size:" in err
    assert f"{cfg}:10: archive.colour: unknown key" in err


# ---- S3: a real SeaweedFS that verifies SigV4 signatures ---------------------------------------

ACCESS_KEY = "AKSWITCHYARDTEST"
SECRET_KEY = "sw1tchyard/secret+KEY"
BUCKET = "events"


def weed_bin() -> str:
    for b in (os.environ.get("WEED_BIN"), str(REPO / "build" / "tools" / "weed")):
        if b and os.access(b, os.X_OK):
            return b
    pytest.fail("SeaweedFS not found: run scripts/install-seaweedfs.sh (builds build/tools/weed) "
                "or set WEED_BIN")


@dataclass
class SeaweedFS:
    proc: subprocess.Popen
    dir: str
    s3_port: int
    master: str

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def create_bucket(self, name: str) -> None:
        r = subprocess.run([weed_bin(), "shell", f"-master={self.master}"],
                           input=f"s3.bucket.create -name {name}\n".encode(), capture_output=True,
                           timeout=60)
        assert b"created bucket" in r.stdout or b"already exists" in r.stdout, r


@pytest.fixture(scope="module")
def seaweed():
    """One SeaweedFS (master, volume, filer, S3 gateway) per test module, on free loopback ports,
    with one identity, so every request must carry a valid SigV4 signature."""
    d = tempfile.mkdtemp(prefix="sy_weed_")
    ports = {k: free_port() for k in ("m", "mg", "v", "vg", "f", "fg", "s", "sg")}
    s3_config = Path(d) / "s3.json"
    s3_config.write_text(json.dumps({"identities": [{
        "name": "switchyard",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    log = open(Path(d) / "weed.log", "wb")
    proc = subprocess.Popen(
        [weed_bin(), "server", f"-dir={d}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
         f"-master.port={ports['m']}", f"-master.port.grpc={ports['mg']}",
         f"-volume.port={ports['v']}", f"-volume.port.grpc={ports['vg']}", "-volume.max=16",
         "-master.volumeSizeLimitMB=64", "-filer", f"-filer.port={ports['f']}",
         f"-filer.port.grpc={ports['fg']}", "-s3", f"-s3.port={ports['s']}",
         f"-s3.port.grpc={ports['sg']}", f"-s3.config={s3_config}"],
        stdout=log, stderr=subprocess.STDOUT, cwd=d)
    log.close()
    w = SeaweedFS(proc, d, ports["s"], f"127.0.0.1:{ports['m']}.{ports['mg']}")
    try:
        import urllib.error
        import urllib.request

        def s3_up() -> bool:
            try:
                urllib.request.urlopen(w.endpoint + "/", timeout=1)
                return True
            except urllib.error.HTTPError as e:
                return e.code == 403  # unsigned request refused: the gateway is up and checking
            except OSError:
                return False
        wait_for(lambda: proc.poll() is None and s3_up(), 60, "SeaweedFS S3 gateway")
        w.create_bucket(BUCKET)
        yield w
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(d, ignore_errors=True)


def s3_archive(w: SeaweedFS, prefix: str, **kw: Any) -> dict:
    return {"store": "s3", "bucket": BUCKET, "prefix": prefix, "region": "us-east-1",
            "endpoint": w.endpoint, "path_style": True, "roll_size": "16KB", "roll_age": "300ms",
            **kw}


def test_s3_archive_ls_and_replay_round_trip(seaweed, make_archive_server, sinks):
    sink = sinks()
    archive = s3_archive(seaweed, "rt/", access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY)
    server = make_archive_server(archive, [hook("new", sink.url(), enabled=False, batch=1000)])
    web = post_events(server, 250)
    backend = post_events(server, 80, write_key=WRITE_KEY_2)
    wait_for(lambda: server.metric("switchyard_archive_events_total") == 330, 30, "archived to S3")
    assert server.metric("switchyard_archive_upload_failures_total") == 0
    assert server.metric("switchyard_archive_upload_seconds_count") >= 3
    rows = server.archive_ls()
    assert rows and all(r["key"].startswith("rt/") for r in rows)
    assert {r["source"] for r in rows} == {SOURCE, SOURCE_2}
    stored = server.dump()
    s = server.replay("--destination", "new")
    assert s["delivered"] == 330, s
    got = sink.events()
    assert Counter(e["messageId"] for e in got) == Counter(web + backend)
    by_id = {e["messageId"]: e for e in stored}
    for e in got:
        assert without_integrations(e) == without_integrations(by_id[e["messageId"]])
    runs = sorted(([e["receivedAt"] for e in r.events()] for r in sink.requests()),
                  key=lambda run: run[0])
    times = [t for run in runs for t in run]
    assert times == sorted(times)


def test_s3_large_file_goes_up_in_parts(seaweed, make_archive_server, sinks):
    sink = sinks()
    archive = s3_archive(seaweed, "mp/", access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY,
                         roll_size="64MB", roll_age="10m", multipart_size="5MB")
    server = make_archive_server(archive, [hook("big", sink.url(), enabled=False)])
    # ~8.6 MB of barely compressible events (random base64), so the gzip file passes 5 MB.
    import base64
    ids = []
    for _ in range(20):
        batch = []
        for _ in range(18):
            mid = new_id()
            ids.append(mid)
            blob = base64.b64encode(os.urandom(18_000)).decode()
            batch.append({"type": "track", "userId": "u", "event": "Blob", "messageId": mid,
                          "properties": {"blob": blob}})
        r = server.post("/v1/batch", {"batch": batch})
        assert r.status == 200 and not r.json().get("rejected"), r
    time.sleep(1.5)  # the archiver reads the 8.6 MB into its open file
    server.stop()  # rolls and uploads the open file (what it has read) once
    server.start()
    rows = server.archive_ls("--source", SOURCE)
    assert len(rows) == 1 and rows[0]["size"] > 5 * 1024 * 1024, rows
    server.stop()
    s = server.replay("--destination", "big")
    assert s["delivered"] == 360
    assert Counter(sink.message_ids()) == Counter(ids)


def test_s3_wrong_secret_is_refused_retried_reported_and_the_log_keeps_events(
        seaweed, make_archive_server):
    archive = s3_archive(seaweed, "bad/")  # credentials from the environment
    env = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    server = make_archive_server(archive, env=env)
    ids = post_events(server, 120)
    wait_for(lambda: server.metric("switchyard_archive_upload_failures_total") >= 2, 30,
             "refused uploads")
    assert server.metric("switchyard_archive_events_total") == 0
    assert server.metric("switchyard_consumer_lag_events", cursor="archive") == 120
    assert "archive upload failed" in server.log_text() and "403" in server.log_text()
    r = server.cli("archive", "ls")
    assert r.returncode == 1 and b"403" in r.stderr  # listing is refused too
    # The log keeps every event.
    assert sorted(e["messageId"] for e in server.dump()) == sorted(ids)
    # With the right secret the archive catches up from its cursor: every event once.
    server.env["AWS_SECRET_ACCESS_KEY"] = SECRET_KEY
    server.start()
    more = post_events(server, 30)
    wait_for(lambda: server.metric("switchyard_archive_events_total") == 150, 30, "caught up")
    server.stop()
    stored = {e["messageId"] for e in server.dump()}
    assert stored == set(ids + more)
    rows = server.archive_ls()
    assert sum(1 for _ in rows) >= 1
    sink = WebhookSink()
    try:
        server.destinations = [hook("check", sink.url(), enabled=False)]
        server.write_config()
        s = server.replay("--destination", "check")
        assert Counter(sink.message_ids()) == Counter(ids + more), s
    finally:
        sink.stop()


# ---- replay into the warehouse destinations: twice, no duplicate rows --------------------------


def sqlite_rows(path: Path, sql: str) -> int:
    import sqlite3
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_replay_twice_into_a_warehouse_leaves_no_duplicate_rows(kind, make_archive_server,
                                                                 request):
    if kind == "postgres":
        pg = request.getfixturevalue("pg_server")
        db = "replay_" + os.urandom(4).hex()
        assert pg.psql(f'CREATE DATABASE "{db}"').returncode == 0
        dest = {"name": "wh", "type": "postgres", "enabled": False, "sources": [SOURCE],
                "settings": {"dsn": pg.dsn(db), "sync_interval": "100ms"}}

        def count(sql: str) -> int:
            return int(pg.query(sql, db=db)[0][0])
        tracks, orders = "web.tracks", "web.order_completed"
    else:
        dest = {"name": "wh", "type": "sqlite", "enabled": False, "sources": [SOURCE],
                "settings": {"path": "./warehouse", "sync_interval": "100ms"}}
        count = None
        tracks, orders = "tracks", "order_completed"
    # A warehouse added after the events were stored (disabled: no live loads).
    server = make_archive_server(LOCAL, [dest])
    if kind == "sqlite":
        db_file = server.workdir / "warehouse" / "web.sqlite"

        def count(sql: str) -> int:  # noqa: F811
            return sqlite_rows(db_file, sql)
    ids = post_events(server, 300)
    post_events(server, 50, write_key=WRITE_KEY_2)  # another source: not this warehouse's
    wait_for(lambda: server.metric("switchyard_archive_events_total") == 350, 20, "archived")
    server.stop()
    for run in (1, 2):
        s = server.replay("--destination", "wh")
        assert s["delivered"] == 300 and s["skipped"] == 50, (run, s)
        assert count(f"SELECT count(*) FROM {tracks}") == 300
        assert count(f"SELECT count(*) FROM {orders}") == 300
        assert count(f"SELECT count(DISTINCT id) FROM {orders}") == 300
    assert count(f"SELECT count(*) FROM {orders} WHERE id = '{ids[7]}'") == 1


def test_s3_kill9_during_uploads_loses_and_duplicates_nothing(seaweed, make_archive_server,
                                                              sinks):
    archive = s3_archive(seaweed, "k9/", access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY,
                         roll_size="4KB", roll_age="100ms")
    sink = sinks()
    server = make_archive_server(archive, [hook("count", sink.url(), enabled=False, batch=1000)])
    posted: list[str] = []
    for round_ in range(5):
        posted += post_events(server, 200)
        time.sleep(0.03 * round_)  # kill -9 while ~40 small files are being signed and PUT
        server.kill()
        server.start()
    wait_for(lambda: server.metric("switchyard_consumer_lag_events", cursor="archive") == 0, 30, "archive caught up")
    server.stop()
    # Replay delivers every archived event once per run: a file archived twice, or an event in
    # two files, would show up twice here; a lost one would be missing.
    s = server.replay("--destination", "count")
    assert Counter(sink.message_ids()) == Counter(posted), s


def test_replay_shows_a_progress_bar_on_a_terminal(make_archive_server, sinks):
    import pty
    sink = sinks()
    server = make_archive_server(LOCAL, [hook("tty", sink.url(), enabled=False)])
    post_events(server, 400)
    wait_for(lambda: server.metric("switchyard_archive_events_total") == 400, 20, "archived")
    server.stop()
    primary, secondary = pty.openpty()
    p = subprocess.Popen([server.bin, "replay", "--config", str(server.config_path),
                          "--destination", "tty", "--rate", "500"], cwd=server.workdir,
                         stdout=subprocess.PIPE, stderr=secondary)
    os.close(secondary)
    out, _ = p.communicate(timeout=60)
    tty_text = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:
            break
        if not chunk:
            break
        tty_text += chunk
    os.close(primary)
    assert p.returncode == 0
    text = tty_text.decode(errors="replace")
    assert "ETA" in text and "ev/s" in text and "events" in text and "%" in text, text[-500:]
    assert "\r[" in text  # redrawn in place
    assert json.loads(out.decode().strip())["delivered"] == 400


def test_reload_reports_that_archive_changes_need_a_restart(make_archive_server):
    server = make_archive_server(LOCAL)
    server.archive = {**LOCAL, "roll_age": "1m"}
    server.write_config()
    r = server.cli("reload")
    assert r.returncode == 0, r.stderr.decode()
    wait_for(lambda: "changes to archive need a restart" in server.log_text(), 10, "reload warning")
    ids = post_events(server, 20)  # the running archiver keeps working with its old settings
    wait_for(lambda: server.metric("switchyard_archive_events_total") == 20, 20, "archived")
    assert Counter(e["messageId"] for e in server.archived_events()) == Counter(ids)
