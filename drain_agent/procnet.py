"""Fast reader of the kernel's TCP socket tables (``/proc/net/tcp`` and ``tcp6``).

The tables list every TCP socket of the reading process's network namespace (the
whole pod). Parsing stays on hex strings: ports and addresses are compared in the
kernel's own hex spelling, so a census of 20,000 sockets costs one ``split`` per line.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

# Kernel TCP states (include/net/tcp_states.h), as the hex spelled in /proc/net/tcp.
STATE_NAMES: dict[str, str] = {
    "01": "ESTABLISHED",
    "02": "SYN_SENT",
    "03": "SYN_RECV",
    "04": "FIN_WAIT1",
    "05": "FIN_WAIT2",
    "06": "TIME_WAIT",
    "07": "CLOSE",
    "08": "CLOSE_WAIT",
    "09": "LAST_ACK",
    "0A": "LISTEN",
    "0B": "CLOSING",
    "0C": "NEW_SYN_RECV",
}
STATE_CODES: dict[str, str] = {name: code for code, name in STATE_NAMES.items()}
LISTEN = "0A"


@dataclass(frozen=True, slots=True)
class RawSocket:
    """One line of /proc/net/tcp{,6}, fields kept in the kernel's hex spelling."""

    family: int  # socket.AF_INET or socket.AF_INET6
    local_addr: str  # hex, kernel byte order
    local_port: str  # 4 hex digits
    remote_addr: str
    remote_port: str
    state: str  # 2 hex digits
    uid: int
    inode: str  # decimal; "0" for TIME_WAIT and orphaned sockets


def port_hex(port: int) -> str:
    """Port number -> the 4-digit upper-case hex the kernel prints."""
    return f"{port:04X}"


def decode_addr(family: int, hexaddr: str) -> str:
    """Kernel hex address (host byte order per 32-bit word) -> printable IP."""
    raw = bytes.fromhex(hexaddr)
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, struct.pack("<I", struct.unpack(">I", raw)[0]))
    words = struct.unpack(">4I", raw)
    packed = struct.pack("<4I", *words)
    text = socket.inet_ntop(socket.AF_INET6, packed)
    if text.startswith("::ffff:") and "." in text:
        return text[len("::ffff:") :]
    return text


def encode_v4(ip: str) -> tuple[str, str]:
    """IPv4 address -> (its tcp hex, its tcp6 hex as a v4-mapped address)."""
    packed = socket.inet_pton(socket.AF_INET, ip)
    v4 = f"{struct.unpack('<I', packed)[0]:08X}"
    mapped = socket.inet_pton(socket.AF_INET6, "::ffff:" + ip)
    v6 = "".join(f"{w:08X}" for w in struct.unpack("<4I", mapped))
    return v4, v6


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
    lines = data.decode("ascii", "replace").splitlines()
    return lines[1:]


def iter_sockets(net_dir: str = "/proc/net") -> Iterator[RawSocket]:
    """Every TCP socket (IPv4 and IPv6) of the namespace that ``net_dir`` belongs to."""
    for family, path in table_paths(net_dir):
        for line in read_table(path):
            parsed = parse_line(family, line)
            if parsed is not None:
                yield parsed


def parse_line(family: int, line: str) -> RawSocket | None:
    f = line.split()
    if len(f) < 10:
        return None
    local, _, lport = f[1].partition(":")
    remote, _, rport = f[2].partition(":")
    try:
        uid = int(f[7])
    except ValueError:
        return None
    return RawSocket(family, local, lport, remote, rport, f[3], uid, f[9])
