"""A fault-injecting HTTP proxy in front of a real engine, on 127.0.0.1: it forwards every request (streams
included, chunk by chunk) unless told to fail — answer 5xx or 4xx, send malformed JSON, hang, or cut a stream off
after a few events. It can stop listening and start again on the same port (the engine "dies" and "comes back")."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

MODES = ("pass", "500", "400", "garbage", "hang", "die")


class FaultProxy:
    """`FaultProxy(upstream).start()`; set `.mode`; `.base_url` is …/v1; `.stop()` / `.start()` again."""

    def __init__(self, upstream: str, port: int | None = None, die_after: int = 3):
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self.mode = "pass"
        self.die_after = die_after  # stream events forwarded before "die" cuts the connection
        self.port = port or _free_port()
        self.requests: list[str] = []  # "METHOD path" of every request, for the tests
        self.seen_headers: list[dict] = []
        self._server: ThreadingHTTPServer | None = None
        self._release = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "FaultProxy":
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                proxy._handle(self, "GET")

            def do_POST(self):
                proxy._handle(self, "POST")

        self._release.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening (connections are refused until start() again); hanging requests are let go."""
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # ------------------------------------------------------------------ one request

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0)) if method == "POST" else None
        self.requests.append(f"{method} {h.path}")
        self.seen_headers.append(dict(h.headers))
        mode = self.mode
        if mode == "hang":
            self._release.wait(60)
            return
        if mode in ("500", "400"):
            payload = b'{"error": {"code": %s, "message": "injected fault", "type": "server_error"}}' % mode.encode()
            return self._reply(h, int(mode), payload)
        if mode == "garbage":
            return self._reply(h, 200, b'{"choices": [{"text": "x", "logprobs": {"content": [{"id": ')
        conn = http.client.HTTPConnection(*self.upstream, timeout=120)
        headers = {k: v for k, v in h.headers.items() if k.lower() not in ("host", "content-length", "connection")}
        headers["Connection"] = "close"  # no idle keep-alive connection holds one of the engine's HTTP threads
        conn.request(method, h.path, body=body, headers=headers)
        up = conn.getresponse()
        h.send_response(up.status)
        for k, v in up.getheaders():
            if k.lower() not in ("transfer-encoding", "content-length", "connection", "keep-alive"):
                h.send_header(k, v)
        h.send_header("Transfer-Encoding", "chunked")
        h.send_header("Connection", "close")
        h.end_headers()
        events = 0
        try:
            while True:
                line = up.readline() if "text/event-stream" in (up.getheader("Content-Type") or "") else up.read(65536)
                if not line:
                    break
                if mode == "die" and line.startswith(b"data:"):
                    events += 1
                    if events > self.die_after:  # the engine "dies" mid-stream: no last chunk, connection reset
                        h.connection.shutdown(socket.SHUT_RDWR)
                        return
                h.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                h.wfile.flush()
            h.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass
        finally:
            conn.close()
            h.close_connection = True

    @staticmethod
    def _reply(h: BaseHTTPRequestHandler, status: int, payload: bytes) -> None:
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(payload)))
        h.send_header("Connection", "close")  # one request per connection: a fault never lingers on a kept one
        h.end_headers()
        h.wfile.write(payload)
        h.close_connection = True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout: float = 10.0, every: float = 0.1) -> bool:
    """Poll `check()` until it is true or `timeout` passes; whether it became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return False
