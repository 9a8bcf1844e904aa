"""Reader of the kernel's TCP tables in ``/proc/net/tcp`` and ``tcp6`` (the fallback).

Used when netlink sock_diag is unavailable, and to look at another process's network
namespace (``/proc/<pid>/net``). Records have the same shape as ``sockdiag``'s.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable

from drain_agent.sockdiag import Record

# Kernel TCP states (include/net/tcp_states.h)
STATE_NAMES: dict[int, str] = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
    12: "NEW_SYN_RECV",
}
LISTEN = 10
ALL_STATES = frozenset(STATE_NAMES)


def hex_to_addr(family: int, hexaddr: str) -> bytes:
    """Kernel hex (each 32-bit word in host order, x86 little endian) -> network bytes."""
    raw = bytes.fromhex(hexaddr)
    return b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))


def addr_text(family: int, addr: bytes) -> str:
    text = socket.inet_ntop(family, addr)
    if family == socket.AF_INET6 and text.startswith("::ffff:") and "." in text:
        return text[len("::ffff:") :]
    return text


def v4_and_mapped(ip: str) -> tuple[bytes, bytes]:
    """An IPv4 address as tcp sees it and as tcp6 sees it (v4-mapped)."""
    return socket.inet_pton(socket.AF_INET, ip), socket.inet_pton(socket.AF_INET6, "::ffff:" + ip)


def table_paths(net_dir: str) -> list[tuple[int, str]]:
    return [
        (socket.AF_INET, os.path.join(net_dir, "tcp")),
        (socket.AF_INET6, os.path.join(net_dir, "tcp6")),
    ]


def read_table(path: str) -> list[str]:
    """Lines of one table without its header; a missing table (no IPv6) is empty."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except (FileNotFoundError, PermissionError):
        return []
    return data.decode("ascii", "replace").splitlines()[1:]


def parse_line(family: int, line: str) -> Record | None:
    f = line.split()
    if len(f) < 10:
        return None
    local, _, lport = f[1].partition(":")
    remote, _, rport = f[2].partition(":")
    try:
        return (family, int(f[3], 16), hex_to_addr(family, local), int(lport, 16),
                hex_to_addr(family, remote), int(rport, 16), int(f[7]), int(f[9]))
    except ValueError:
        return None


def read_records(net_dir: str, states: Iterable[int]) -> list[Record]:
    """Sockets in ``states`` (other lines are skipped before any conversion)."""
    wanted = {f"{s:02X}" for s in states}
    out: list[Record] = []
    for family, path in table_paths(net_dir):
        for line in read_table(path):
            head = line.split(None, 4)
            if len(head) < 4 or head[3] not in wanted:
                continue
            rec = parse_line(family, line)
            if rec is not None:
                out.append(rec)
    return out
