"""A fake Envoy admin endpoint on 127.0.0.1:15000: /stats from a file, drain calls logged.

usage: fake_admin.py STATS_FILE DRAIN_LOG [PORT [COMM]]   (prints "ready" once listening)
(port 15020, comm pilot-agent: pilot-agent's status port, whose POST /drain is logged)
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
        if self.path.startswith(("/drain_listeners", "/drain")):
            with open(DRAINS, "a") as fh:
                fh.write(self.path + "\n")
            self._send(200, b"OK\n")
        else:
            self._send(404, b"")

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    port = int(sys.argv[3]) if len(sys.argv) > 3 else 15000
    comm = sys.argv[4] if len(sys.argv) > 4 else "envoy"
    ctypes.CDLL(None).prctl(15, comm.encode(), 0, 0, 0)
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("ready", flush=True)
    srv.serve_forever()
