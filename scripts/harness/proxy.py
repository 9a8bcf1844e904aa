"""The proxy container: an Envoy stand-in and a pilot-agent stand-in.

envoy (comm "envoy"; argv[0] a link named envoy to the interpreter):
  inbound  0.0.0.0:15006  -> APP_HOST (127.0.0.1):APP_PORT, from source 127.0.0.6, pooled
           upstream; a connection istio-init's rules redirected goes to the port it was
           sent to (SO_ORIGINAL_DST), as Envoy's inbound original-destination cluster does
  outbound 127.0.0.1:15001 -> the Host header's host:port, pooled upstream
  admin    127.0.0.1:15000 -> POST /drain_listeners[?inboundonly], GET /stats[?filter=RE]
  Draining: keeps accepting; answers with "Connection: close" and closes afterwards.
  Upstream failure (refused, reset, EOF before the response): 503.
pilot-agent (comm "pilot-agent", argv[0] likewise): starts envoy, listens on the status port
  15020; on SIGTERM: POST drain_listeners?inboundonly&graceful, wait
  terminationDrainDuration, SIGKILL envoy, exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness import http11  # noqa: E402
from harness.netns import raise_nofile, set_comm  # noqa: E402

INBOUND = "inbound_0.0.0.0_8080"
OUTBOUND = "outbound_0.0.0.0_80"
SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h


def original_destination(writer: asyncio.StreamWriter) -> tuple[str, int] | None:
    """Where the client sent this connection before a NAT REDIRECT (None: no conntrack
    entry, e.g. no capture rules)."""
    sock = writer.get_extra_info("socket")
    try:
        raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    except OSError:
        return None
    return socket.inet_ntoa(raw[4:8]), int.from_bytes(raw[2:4], "big")


def emit(who: str, event: str, **kw: object) -> None:
    print(json.dumps({"t": time.monotonic(), "who": who, "event": event, **kw}), flush=True)


class Envoy:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.draining = {"inbound": False, "outbound": False}
        self.gauges: dict[str, int] = defaultdict(int)
        self.pools: dict[tuple[str, int], list[tuple[asyncio.StreamReader,
                                                     asyncio.StreamWriter]]] = defaultdict(list)
        self.captured: set[tuple[str, tuple[str, int]]] = set()

    def g(self, name: str, delta: int) -> None:
        self.gauges[name] += delta

    async def upstream_conn(
        self, host: str, port: int, inbound: bool
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        """A pooled connection (True) or a new one."""
        pool = self.pools[(host, port)]
        while pool:
            r, w = pool.pop()
            if not r.at_eof() and not w.is_closing():
                return r, w, True
            w.close()
        local = ("127.0.0.6", 0) if inbound else None
        r, w = await asyncio.open_connection(host, port, local_addr=local)
        return r, w, False

    async def forward(
        self, req: http11.Message, host: str, port: int, inbound: bool
    ) -> tuple[int, bytes]:
        cluster = f"cluster.{'inbound|8080||' if inbound else f'outbound|{port}||{host}'}"
        try:
            r, w, pooled = await self.upstream_conn(host, port, inbound)
        except OSError as e:
            emit("envoy", "upstream_failed", stage="connect", pooled=False, error=repr(e))
            return 503, b"upstream connect error or disconnect/reset before headers\n"
        self.g(f"{cluster}.upstream_rq_active", 1)
        try:
            w.write(http11.render(req.start, {"Host": f"{host}:{port}"}, req.body))
            await w.drain()
            resp = await http11.read_message(r)
            if resp is None:
                raise ConnectionError("eof")
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError) as e:
            emit("envoy", "upstream_failed", stage="request", pooled=pooled, error=repr(e))
            w.close()
            return 503, b"upstream connect error or disconnect/reset before headers\n"
        finally:
            self.g(f"{cluster}.upstream_rq_active", -1)
        if resp.wants_close():
            w.close()
        else:
            self.pools[(host, port)].append((r, w))
        return resp.status, resp.body

    def handler(self, kind: str):  # type: ignore[no-untyped-def]
        listener = "0.0.0.0_15006" if kind == "inbound" else "127.0.0.1_15001"
        hcm = INBOUND if kind == "inbound" else OUTBOUND

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            original = self.note_capture(kind, writer)
            app_port = original[1] if original else self.args.app_port
            self.g(f"listener.{listener}.downstream_cx_active", 1)
            self.g(f"http.{hcm}.downstream_cx_active", 1)
            try:
                async for req in http11.requests(reader):
                    self.g(f"http.{hcm}.downstream_rq_active", 1)
                    try:
                        if kind == "inbound":
                            status, body = await self.forward(
                                req, self.args.app_host, app_port, True)
                        else:
                            host, _, port = req.headers.get("host", "").rpartition(":")
                            status, body = await self.forward(req, host, int(port or 80), False)
                    finally:
                        self.g(f"http.{hcm}.downstream_rq_active", -1)
                    close = self.draining[kind] or req.wants_close()
                    try:
                        writer.write(http11.response(status, body, close=close))
                        await writer.drain()
                    except (OSError, ConnectionError):
                        return
                    if close:
                        return
            finally:
                self.g(f"listener.{listener}.downstream_cx_active", -1)
                self.g(f"http.{hcm}.downstream_cx_active", -1)
                writer.close()

        return handle

    def note_capture(self, kind: str, writer: asyncio.StreamWriter) -> tuple[str, int] | None:
        """The connection's original destination when istio-init's rules redirected it
        (reported once per destination, so tests can see the capture happen)."""
        original = original_destination(writer)
        here = writer.get_extra_info("sockname")
        if original is None or (here and original == (here[0], here[1])):
            return None
        if (kind, original) not in self.captured:
            self.captured.add((kind, original))
            emit("envoy", "captured", listener=kind, original_dst=f"{original[0]}:{original[1]}")
        return original

    async def admin(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.g("listener.admin.downstream_cx_active", 1)
        try:
            async for req in http11.requests(reader):
                url = urllib.parse.urlsplit(req.target)
                query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
                if url.path == "/drain_listeners" and req.method == "POST":
                    inbound_only = "inboundonly" in query
                    self.draining["inbound"] = True
                    if not inbound_only:
                        self.draining["outbound"] = True
                    emit("envoy", "drain_listeners", inboundonly=inbound_only)
                    status, body = 200, b"OK\n"
                elif url.path == "/stats" and self.args.stats:
                    status, body = 200, self.render_stats(query.get("filter", [""])[0]).encode()
                elif url.path == "/ready":
                    status, body = 200, b"LIVE\n"
                else:
                    status, body = 404, b"not found\n"
                writer.write(http11.response(status, body))
                await writer.drain()
        except (OSError, ConnectionError):
            return
        finally:
            self.g("listener.admin.downstream_cx_active", -1)
            writer.close()

    def render_stats(self, flt: str) -> str:
        names = dict(self.gauges)
        for n in (f"http.{INBOUND}.downstream_rq_active", f"http.{OUTBOUND}.downstream_rq_active",
                  "http.admin.downstream_rq_active"):
            names.setdefault(n, 0)
        pattern = re.compile(flt) if flt else None
        lines = [f"{k}: {v}" for k, v in sorted(names.items())
                 if pattern is None or pattern.search(k)]
        return "\n".join(lines) + "\n"

    async def prewarm(self) -> None:
        for _ in range(self.args.pool_prewarm):
            for _attempt in range(200):
                try:
                    r, w = await asyncio.open_connection(
                        self.args.app_host, self.args.app_port, local_addr=("127.0.0.6", 0))
                    break
                except OSError:
                    await asyncio.sleep(0.05)
            else:
                return
            self.pools[(self.args.app_host, self.args.app_port)].append((r, w))
        emit("envoy", "pool_ready", size=self.args.pool_prewarm)

    async def main(self) -> None:
        servers = [
            await asyncio.start_server(self.handler("inbound"), "0.0.0.0", 15006, backlog=4096,
                                       reuse_address=True),
            await asyncio.start_server(self.handler("outbound"), "127.0.0.1", 15001,
                                       backlog=4096, reuse_address=True),
        ]
        if self.args.admin:
            servers.append(await asyncio.start_server(self.admin, "127.0.0.1", 15000,
                                                      reuse_address=True))
        if self.args.pool_prewarm:
            await self.prewarm()
        emit("envoy", "ready", pid=os.getpid())
        await asyncio.Event().wait()


def run_pilot_agent(args: argparse.Namespace) -> None:
    here = os.path.abspath(__file__)
    argv = [args.envoy, here, "--role", "envoy", "--app-port", str(args.app_port),
            "--app-host", args.app_host,
            "--pool-prewarm", str(args.pool_prewarm)]
    if not args.stats:
        argv.append("--no-stats")
    if not args.admin:
        argv.append("--no-admin")
    envoy = subprocess.Popen(argv)
    status = None
    if args.status_port:
        status = socket.create_server(("0.0.0.0", args.status_port), reuse_port=False)
    term = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: term.set())
    emit("pilot-agent", "started", envoy=envoy.pid, status_port=args.status_port)
    while not term.wait(0.05):
        if envoy.poll() is not None:
            emit("pilot-agent", "envoy_exited", code=envoy.returncode)
            return
    term_at = time.monotonic()
    emit("pilot-agent", "sigterm")
    if args.admin:
        try:
            with socket.create_connection(("127.0.0.1", 15000), timeout=1) as s:
                s.sendall(http11.request("POST", "/drain_listeners?inboundonly&graceful",
                                         "127.0.0.1:15000", close=True))
                s.recv(1024)
        except OSError:
            pass
    try:
        envoy.wait(max(0.0, term_at + args.drain_seconds - time.monotonic()))
    except subprocess.TimeoutExpired:
        envoy.kill()
        emit("pilot-agent", "envoy_killed", after=round(time.monotonic() - term_at, 3))
    envoy.wait()
    if status is not None:
        status.close()
    emit("pilot-agent", "exit")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--role", choices=("envoy", "pilot-agent"), default="pilot-agent")
    p.add_argument("--app-port", type=int, default=8080)
    p.add_argument("--app-host", default="127.0.0.1",
                   help="the inbound cluster's endpoint (Istio 1.10+: the pod IP)")
    p.add_argument("--drain-seconds", type=float, default=5.0,
                   help="terminationDrainDuration")
    p.add_argument("--status-port", type=int, default=15020)
    p.add_argument("--pool-prewarm", type=int, default=2)
    p.add_argument("--no-stats", dest="stats", action="store_false")
    p.add_argument("--no-admin", dest="admin", action="store_false")
    p.add_argument("--envoy", default=sys.executable,
                   help="the program envoy runs as: a link named envoy to the interpreter")
    args = p.parse_args()
    set_comm(args.role)
    raise_nofile()
    if args.role == "envoy":
        asyncio.run(Envoy(args).main())
    else:
        run_pilot_agent(args)


if __name__ == "__main__":
    main()
