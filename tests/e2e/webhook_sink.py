"""A local HTTP server standing in for a webhook receiver in the delivery suite.

It records every request (method, path, headers, body) and answers from a script: `answer` is
called with the request number (0-based) and the request, and returns (status, body, headers)
or (status, body, headers, delay_seconds) to answer late; status 0 closes the connection
without answering.
Threaded, on 127.0.0.1 and a free port; stop() shuts it down.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


@dataclass
class Received:
    at: float  # time.monotonic() on arrival
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def events(self) -> list[dict]:
        doc = self.json()
        return doc if isinstance(doc, list) else [doc]


Answer = Callable[[int, Received], tuple]


def always(status: int, body: bytes = b'{"ok":true}', headers: dict | None = None) -> Answer:
    return lambda n, req: (status, body, headers or {})


class WebhookSink:
    def __init__(self, answer: Answer | None = None, delay: float = 0.0):
        self.answer: Answer = answer or always(200)
        self.delay = delay
        self.received: list[Received] = []
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do

            def do_PUT(self) -> None:  # noqa: N802 (vendor APIs that upsert with PUT)
                self.do_POST("PUT")

            def do_POST(self, method: str = "POST") -> None:  # noqa: N802
                n = int(self.headers.get("Content-Length") or 0)
                req = Received(time.monotonic(), method, self.path, {k.lower(): v for k, v in self.headers.items()},
                               self.rfile.read(n))
                with sink.lock:
                    number = len(sink.received)
                    sink.received.append(req)
                    answer = sink.answer
                if sink.delay:
                    time.sleep(sink.delay)
                status, body, headers, *late = answer(number, req)
                if late:
                    time.sleep(late[0])
                if status == 0:  # drop the connection without an answer (a reset)
                    self.close_connection = True
                    return
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # a batch opens many connections at once

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def requests(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def events(self) -> list[dict]:
        return [e for r in self.requests() for e in r.events()]

    def message_ids(self) -> list[str]:
        return [e["messageId"] for e in self.events()]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def wait_for(cond: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
