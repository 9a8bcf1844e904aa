"""Holds sockets as a JSON spec says, prints "ready", keeps them until stdin closes.

spec: {"comm": "envoy",
       "listen": [{"host": "127.0.0.1", "port": 15001, "close_accepted": false,
                   "accept_once": false}],
       "connect": [{"host": "127.0.0.1", "port": 8080, "bind": "127.0.0.6", "count": 2,
                    "close": false}]}
"""

from __future__ import annotations

import ctypes
import json
import socket
import sys
import threading


def main() -> None:
    spec = json.loads(sys.argv[1])
    if spec.get("comm"):
        ctypes.CDLL(None).prctl(15, spec["comm"].encode(), 0, 0, 0)
    keep: list[socket.socket] = []
    lock = threading.Lock()

    def acceptor(ls: socket.socket, close: bool, once: bool) -> None:
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            if close:
                c.close()
            else:
                with lock:
                    keep.append(c)
            if once:  # then close the listener, as an app shutting down does first
                ls.close()
                print("accepted", flush=True)
                return

    for item in spec.get("listen", []):
        fam = socket.AF_INET6 if ":" in item["host"] else socket.AF_INET
        ls = socket.socket(fam, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        ls.bind((item["host"], item["port"]))
        ls.listen(1024)
        keep.append(ls)
        threading.Thread(
            target=acceptor, args=(ls, bool(item.get("close_accepted")),
                                   bool(item.get("accept_once"))), daemon=True
        ).start()
    for item in spec.get("connect", []):
        fam = socket.AF_INET6 if ":" in item["host"] else socket.AF_INET
        for _ in range(int(item.get("count", 1))):
            s = socket.socket(fam, socket.SOCK_STREAM)
            if item.get("bind"):
                s.bind((item["bind"], 0))
            s.connect((item["host"], item["port"]))
            if item.get("close"):
                s.close()
            else:
                keep.append(s)
    print("ready", flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
