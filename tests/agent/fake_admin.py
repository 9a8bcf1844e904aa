"""A fake Envoy admin endpoint on 127.0.0.1:15000: /stats from a file, drain calls logged.

usage: fake_admin.py STATS_FILE DRAIN_LOG   (prints "ready" once listening)
"""

from __future__ import annotations

import ctypes
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATS, DRAINS = sys.argv[1], sys.argv[2]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/stats"):
            with open(STATS, "rb") as fh:
                self._send(200, fh.read())
        else:
            self._send(404, b"")

    def do_POST(self) -> None:  # noqa: N802
        if self.path.startswith("/drain_listeners"):
            with open(DRAINS, "a") as fh:
                fh.write(self.path + "\n")
            self._send(200, b"OK\n")
        else:
            self._send(404, b"")

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    ctypes.CDLL(None).prctl(15, b"envoy", 0, 0, 0)
    srv = ThreadingHTTPServer(("127.0.0.1", 15000), Handler)
    print("ready", flush=True)
    srv.serve_forever()
