#!/usr/bin/env python3
"""Stand-in for kube-proxy, only for the `kubernetes` Service: this machine has no
iptables/nft userland, so ClusterIP 10.0.0.1:443 is an address on the node's bridge and
this relay copies bytes between it and the apiserver's loopback port (like kube-proxy's
old userspace mode). kubelet gives every pod KUBERNETES_SERVICE_HOST=10.0.0.1 and the
apiserver's certificate carries that IP, so in-cluster clients (the drain agent's Event
posts, ServiceAccount tokens) work unchanged.

Usage: svcrelay.py LISTEN_HOST:PORT TARGET_HOST:PORT
"""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
import threading


def pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            with contextlib.suppress(OSError):
                s.shutdown(how)


def serve(client: socket.socket, target: tuple[str, int]) -> None:
    try:
        upstream = socket.create_connection(target, timeout=10)
    except OSError:
        client.close()
        return
    upstream.settimeout(None)
    back = threading.Thread(target=pipe, args=(upstream, client), daemon=True)
    back.start()
    pipe(client, upstream)
    back.join()
    client.close()
    upstream.close()


def split(hostport: str) -> tuple[str, int]:
    host, _, port = hostport.rpartition(":")
    return host, int(port)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    listen, target = split(argv[0]), split(argv[1])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = socket.create_server(listen, reuse_port=False)
    server.listen(128)
    print(f"svcrelay: {argv[0]} -> {argv[1]}", flush=True)
    while True:
        client, _ = server.accept()
        threading.Thread(target=serve, args=(client, target), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
