"""kill -9 a real `switchyard serve` under concurrent load at random moments, several rounds
(every third round a SIGTERM instead: a graceful stop under load).

N threads send small /v1/batch requests with unique messageIds. A batch whose request failed
(connection refused/reset, 5xx) is retried with the SAME messageIds until it is acknowledged,
exactly as the Segment libraries do. At the end every batch has been acknowledged once, so
every messageId ever sent must be stored EXACTLY once: none lost (acknowledged = durable), none
twice (retries are deduped, across crashes too).

SY_SOAK=1 runs 100 rounds instead of 5. SY_CRASH_SEED fixes the random moments.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import threading
import time
from collections import Counter

from conftest import WRITE_KEY, basic

THREADS = 16
EVENTS_PER_BATCH = 4
ROUNDS = 100 if os.environ.get("SY_SOAK") == "1" else 5


class Sender(threading.Thread):
    def __init__(self, server, tid: int, run: str):
        super().__init__(daemon=True)
        self.server, self.tid, self.run_id = server, tid, run
        self.seq = 0
        self.pending: list[str] | None = None  # ids of the batch being retried
        self.acked: list[str] = []             # ids whose request got a 200
        self.sent: set[str] = set()
        self.failures = 0
        self.unexpected: list[str] = []
        self.stop = threading.Event()
        self.drain = False  # when set: stop once `pending` is acknowledged
        self.conn: http.client.HTTPConnection | None = None

    def next_batch(self) -> list[str]:
        ids = [f"{self.run_id}-{self.tid}-{self.seq}-{i}" for i in range(EVENTS_PER_BATCH)]
        self.seq += 1
        return ids

    def post(self, ids: list[str]) -> int:
        body = json.dumps({"batch": [
            {"type": "track", "userId": f"user-{self.tid}", "event": "Crash Test",
             "messageId": m, "properties": {"tid": self.tid}} for m in ids]}).encode()
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        self.conn.request("POST", "/v1/batch", body,
                          {"Content-Type": "application/json",
                           "Authorization": basic(WRITE_KEY)})
        r = self.conn.getresponse()
        data = r.read()
        if r.will_close:
            self.conn.close()
            self.conn = None
        if r.status == 200 and json.loads(data) != {"success": True}:
            self.unexpected.append(f"200 with {data[:200]!r}")
            return 0
        if r.status not in (200, 503):
            self.unexpected.append(f"{r.status} {data[:200]!r}")
        return r.status

    def run(self) -> None:
        while not self.stop.is_set():
            if self.pending is None:
                if self.drain:
                    return
                self.pending = self.next_batch()
            self.sent.update(self.pending)
            try:
                status = self.post(self.pending)
            except (OSError, http.client.HTTPException):
                status = 0
                if self.conn is not None:
                    self.conn.close()
                    self.conn = None
            if status == 200:
                self.acked.extend(self.pending)
                self.pending = None
            else:
                self.failures += 1
                time.sleep(0.01)  # server down or restarting: retry the same ids


def test_kill_9_under_load_loses_and_duplicates_nothing(make_server):
    seed = int(os.environ.get("SY_CRASH_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    # Small segments so that crashes also land around segment rolls.
    server = make_server(log={"segment_size": "1MB"}, io_threads=2)
    run = f"crash{seed}"
    senders = [Sender(server, t, run) for t in range(THREADS)]
    for s in senders:
        s.start()
    t0 = time.monotonic()
    acked_per_round = []
    try:
        for rnd in range(ROUNDS):
            before = sum(len(s.acked) for s in senders)
            # Crash only a server that is taking load (acknowledging), at a random moment.
            deadline = time.monotonic() + 10
            while sum(len(s.acked) for s in senders) == before and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(rng.uniform(0.05, 0.7))
            if rnd % 3 == 2:
                server.stop()  # a graceful SIGTERM under load: must exit 0, lose nothing
            else:
                server.kill()
            acked_per_round.append(sum(len(s.acked) for s in senders) - before)
            time.sleep(rng.uniform(0, 0.05))
            server.start()
        # Let every sender get its in-flight batch acknowledged, then stop.
        for s in senders:
            s.drain = True
        deadline = time.monotonic() + 30
        for s in senders:
            s.join(max(0.1, deadline - time.monotonic()))
        stuck = [s.tid for s in senders if s.is_alive()]
        assert not stuck, f"seed={seed}: senders {stuck} never got their batch acknowledged"
    finally:
        for s in senders:
            s.stop.set()
        for s in senders:
            s.join(5)
    elapsed = time.monotonic() - t0

    unexpected = [u for s in senders for u in s.unexpected]
    assert not unexpected, f"seed={seed}: unexpected answers: {unexpected[:5]}"
    # Each round really crashed a server that was taking load.
    assert all(n > 0 for n in acked_per_round), f"seed={seed}: acked per round {acked_per_round}"
    assert sum(s.failures for s in senders) > 0, "no request ever failed: the kills missed"

    acked = [m for s in senders for m in s.acked]
    sent = set().union(*(s.sent for s in senders))
    assert len(acked) == len(set(acked)) == len(sent)  # every batch was finally acknowledged

    events = server.dump()
    counts = Counter(e["messageId"] for e in events)
    missing = [m for m in acked if counts[m] == 0]
    twice = {m: c for m, c in counts.items() if c > 1}
    foreign = set(counts) - sent
    assert not missing, f"seed={seed}: {len(missing)} acknowledged events lost, e.g. {missing[:5]}"
    assert not twice, f"seed={seed}: {len(twice)} events stored more than once, e.g. " \
                      f"{list(twice.items())[:5]}"
    assert not foreign, f"seed={seed}: unknown events stored: {list(foreign)[:5]}"
    assert len(events) == len(acked)
    print(f"seed={seed} rounds={ROUNDS} acked={len(acked)} per-round={acked_per_round} "
          f"failed-requests={sum(s.failures for s in senders)} restarts={server.starts} "
          f"elapsed={elapsed:.1f}s")
