"""Live reload under load: while events flow in, a destination is disabled, enabled again, one
is added and one removed (and added back). Nothing acknowledged is lost anywhere; an unchanged
destination is never restarted (no duplicates); the stops are clean (each finishes its rounds
and commits), so the restarted ones get no duplicates either; a removed destination gives up
its cursor, so adding it back starts over at the oldest retained event."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter

from conftest import new_id
from test_delivery import make_delivery_server, sinks, webhook  # noqa: F401
from webhook_sink import wait_for


class Feeder:
    """Posts batches of 20 track events in a loop on a thread; keeps the acknowledged ids."""

    def __init__(self, server):
        self.server = server
        self.acked: list[str] = []
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop_flag.is_set():
            ids = [new_id() for _ in range(20)]
            batch = [{"type": "track", "userId": f"u{i}", "event": "Flow", "messageId": m}
                     for i, m in enumerate(ids)]
            r = self.server.post("/v1/batch", {"batch": batch})
            assert r.status == 200, r
            self.acked += ids
            time.sleep(0.01)

    def stop(self) -> list[str]:
        self.stop_flag.set()
        self.thread.join(10)
        return self.acked


def test_reload_under_load_loses_nothing_and_duplicates_nothing(make_delivery_server, sinks):
    steady, a, b, c = sinks(), sinks(), sinks(), sinks()

    def dests(**enabled):
        out = [webhook("steady", steady.url())]
        for name, sink in (("a", a), ("b", b), ("c", c)):
            if name in enabled:
                out.append(dict(webhook(name, sink.url()), enabled=enabled[name]))
        return out

    server = make_delivery_server(dests(a=True, b=True))
    cursors = server.data_dir / "log" / "cursors"

    def reload(**enabled) -> None:
        server.destinations = dests(**enabled)
        server.write_config()
        server.proc.send_signal(signal.SIGHUP)
        time.sleep(0.7)  # events keep flowing meanwhile

    feeder = Feeder(server)
    time.sleep(0.7)
    reload(a=False, b=True)          # a disabled
    reload(a=True, b=True, c=True)   # a enabled again, c added
    reload(a=True, c=True)           # b removed: its cursor goes
    wait_for(lambda: not (cursors / "dest.b.cursor").exists(), what="b's cursor deleted")
    b_before_removal = Counter(b.message_ids())
    acked = feeder.stop()
    assert len(acked) > 200, "too little traffic to prove anything"

    for name, sink in (("steady", steady), ("a", a), ("c", c)):
        wait_for(lambda: set(acked) <= set(sink.message_ids()), timeout=30,
                 what=f"{name} has every acknowledged event")
        got = Counter(sink.message_ids())
        assert set(got) == set(acked), name  # nothing lost, nothing invented
        dups = {m: n for m, n in got.items() if n > 1}
        assert not dups, f"{name}: {len(dups)} events delivered twice"
    wait_for(lambda: server.metrics().get_value("switchyard_consumer_lag_events", cursor="dest.a") == 0,
             what="a's cursor committed to the end")
    assert set(b_before_removal) <= set(acked)
    assert max(b_before_removal.values()) == 1

    # b added back: a new cursor, starting over at the oldest retained event.
    reload(a=True, b=True, c=True)
    expected = sum(b_before_removal.values()) + len(acked)
    wait_for(lambda: len(b.message_ids()) >= expected, timeout=30, what="b starts over")
    again = Counter(b.message_ids())
    wrong = {m: (b_before_removal[m], again[m]) for m in acked
             if again[m] != b_before_removal[m] + 1}
    assert not wrong, f"{len(wrong)} events not delivered exactly once more: {list(wrong.items())[:5]}"
    server.stop()
