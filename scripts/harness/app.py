"""The application container: an HTTP server that shuts down like Go's Server.Shutdown.

GET /delay/N        answer 200 after N seconds
GET /call-out/N     call http://UPSTREAM/delay/N through the proxy (127.0.0.1:15001),
                    answer 200 if that succeeded, else 502
On SIGTERM (after --shutdown-delay): close the listener, close idle keep-alive
connections, finish requests in flight, then exit. Events are JSON lines on stdout.
Also used, with --upstream-only, as the "external" service outbound calls go to.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness import http11  # noqa: E402
from harness.netns import raise_nofile, set_comm  # noqa: E402


def emit(event: str, **kw: object) -> None:
    print(json.dumps({"t": time.monotonic(), "who": "app", "event": event, **kw}), flush=True)


class App:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.active = 0
        self.idle: set[asyncio.StreamWriter] = set()    # served a request, waiting for more
        self.fresh: set[asyncio.StreamWriter] = set()   # accepted, no request read yet
        self.shutting_down = False
        self.server: asyncio.base_events.Server | None = None
        self.done = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self.pool: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def call_out(self, seconds: float) -> tuple[bool, str]:
        """One HTTP call through the proxy's outbound listener (fresh connection)."""
        host, port = self.args.proxy_outbound.rsplit(":", 1)
        try:
            r, w = await asyncio.open_connection(host, int(port))
        except OSError as e:
            return False, f"connect: {e}"
        try:
            w.write(http11.request("GET", f"/delay/{seconds}", self.args.upstream, close=True))
            await w.drain()
            resp = await http11.read_message(r)
            if resp is None:
                return False, "eof"
            return resp.status == 200, str(resp.status)
        except (OSError, ConnectionError, asyncio.IncompleteReadError) as e:
            return False, type(e).__name__
        finally:
            w.close()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.fresh.add(writer)
        try:
            async for req in http11.requests(reader):
                self.fresh.discard(writer)
                self.idle.discard(writer)
                self.active += 1
                emit("request_started", path=req.target, active=self.active)
                status, body = await self.serve(req.target)
                self.active -= 1
                close = self.shutting_down or req.wants_close()
                try:
                    writer.write(http11.response(status, body, close=close))
                    await writer.drain()
                except (OSError, ConnectionError):
                    return
                emit("request_finished", path=req.target, status=status, active=self.active)
                if close:
                    return
                self.idle.add(writer)
                self.maybe_done()
        finally:
            self.idle.discard(writer)
            self.fresh.discard(writer)
            writer.close()
            self.maybe_done()

    async def serve(self, target: str) -> tuple[int, bytes]:
        parts = target.strip("/").split("/")
        try:
            if parts[0] == "delay":
                await asyncio.sleep(float(parts[1]))
                return 200, b"ok\n"
            if parts[0] == "call-out":
                ok, detail = await self.call_out(float(parts[1]))
                emit("call_out_finished", ok=ok, detail=detail)
                return (200, b"ok\n") if ok else (502, detail.encode())
            if parts[0] == "healthz":
                return 200, b"ok\n"
        except (IndexError, ValueError):
            pass
        return 404, b"not found\n"

    def maybe_done(self) -> None:
        if self.shutting_down and self.active == 0 and not self.tasks:
            self.done.set()

    async def shutdown(self) -> None:
        if self.shutting_down:
            return
        emit("sigterm")
        if self.args.shutdown_delay:
            await asyncio.sleep(self.args.shutdown_delay)
        if self.args.term_call:
            t = asyncio.create_task(self.shutdown_call(self.args.term_call))
            self.tasks.add(t)
        self.shutting_down = True
        if self.server is not None:
            self.server.close()  # stop accepting (the listener goes away)
        emit("shutdown_started", active=self.active, idle=len(self.idle), fresh=len(self.fresh))
        for w in [*self.idle, *self.fresh]:
            w.close()
        for _, w in self.pool:
            w.close()
        self.maybe_done()

    async def shutdown_call(self, seconds: float) -> None:
        ok, detail = await self.call_out(seconds)
        emit("shutdown_call_finished", ok=ok, detail=detail)
        self.tasks.clear()
        self.maybe_done()

    async def open_pool(self) -> None:
        """Idle keep-alive connections to the proxy's outbound port (an HTTP client pool)."""
        host, port = self.args.proxy_outbound.rsplit(":", 1)
        for _ in range(self.args.outbound_pool):
            for _attempt in range(100):
                try:
                    r, w = await asyncio.open_connection(host, int(port))
                    break
                except OSError:
                    await asyncio.sleep(0.05)
            else:
                return
            w.write(http11.request("GET", "/delay/0", self.args.upstream))
            await w.drain()
            await http11.read_message(r)
            self.pool.append((r, w))
        emit("pool_ready", size=len(self.pool))

    async def main(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, lambda: asyncio.ensure_future(self.shutdown()))
        self.server = await asyncio.start_server(
            self.handle, self.args.host, self.args.port, backlog=4096, reuse_address=True
        )
        emit("listening", port=self.args.port)
        if self.args.outbound_pool:
            asyncio.ensure_future(self.open_pool())
        await self.done.wait()
        emit("exit")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--proxy-outbound", default="127.0.0.1:15001")
    p.add_argument("--upstream", default="", help="host:port of the external service")
    p.add_argument("--shutdown-delay", type=float, default=0.0)
    p.add_argument("--term-call", type=float, default=0.0,
                   help="on SIGTERM, make an outbound call of this many seconds")
    p.add_argument("--outbound-pool", type=int, default=0)
    p.add_argument("--comm", default="app")
    args = p.parse_args()
    set_comm(args.comm)
    raise_nofile()
    asyncio.run(App(args).main())


if __name__ == "__main__":
    main()
