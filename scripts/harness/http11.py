"""Just enough HTTP/1.1 (Content-Length bodies, keep-alive) for the harness processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

REASONS = {200: "OK", 404: "Not Found", 502: "Bad Gateway", 503: "Service Unavailable"}


@dataclass
class Message:
    start: str  # request line or status line
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def status(self) -> int:
        return int(self.start.split()[1])

    @property
    def method(self) -> str:
        return self.start.split()[0]

    @property
    def target(self) -> str:
        return self.start.split()[1]

    def wants_close(self) -> bool:
        return self.headers.get("connection", "").lower() == "close"


async def read_message(reader: asyncio.StreamReader) -> Message | None:
    """One request or response; None on a clean EOF before its first byte."""
    line = await reader.readline()
    if not line:
        return None
    if not line.endswith(b"\n"):
        raise ConnectionError("truncated start line")
    msg = Message(line.decode("latin-1").strip())
    while True:
        h = await reader.readline()
        if not h.endswith(b"\n"):
            raise ConnectionError("truncated headers")
        if h in (b"\r\n", b"\n"):
            break
        k, _, v = h.decode("latin-1").partition(":")
        msg.headers[k.strip().lower()] = v.strip()
    n = int(msg.headers.get("content-length", "0"))
    if n:
        msg.body = await reader.readexactly(n)
    return msg


async def requests(reader: asyncio.StreamReader) -> AsyncIterator[Message]:
    """Requests on one keep-alive connection, until the peer closes or breaks it."""
    while True:
        try:
            req = await read_message(reader)
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        if req is None:
            return
        yield req


def render(start: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    h = dict(headers)
    h["Content-Length"] = str(len(body))
    lines = [start] + [f"{k}: {v}" for k, v in h.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def response(status: int, body: bytes = b"", close: bool = False,
             headers: dict[str, str] | None = None) -> bytes:
    h = dict(headers or {})
    if close:
        h["Connection"] = "close"
    return render(f"HTTP/1.1 {status} {REASONS.get(status, 'X')}", h, body)


def request(method: str, target: str, host: str, close: bool = False) -> bytes:
    h = {"Host": host}
    if close:
        h["Connection"] = "close"
    return render(f"{method} {target} HTTP/1.1", h)
