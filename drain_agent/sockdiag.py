"""TCP sockets of this network namespace through NETLINK_SOCK_DIAG (what ``ss`` uses).

The kernel filters by state and sends fixed binary records, so no text is formatted
and parsed: at 20,000 sockets this costs a fraction of reading ``/proc/net/tcp``.
Only this process's own network namespace can be read this way.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterable

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3

_NLMSGHDR = struct.Struct("=IHHII")
# inet_diag_req_v2: family, protocol, ext, pad, states, then a zeroed inet_diag_sockid
_REQ = struct.Struct("=BBBxI48x")
# inet_diag_msg: family, state, timer, retrans, sport, dport (big endian, swapped below),
# src[16], dst[16], if, cookie[8], expires, rqueue, wqueue, uid, inode
_MSG = struct.Struct("=BBxxHH16s16s4x8x4x4x4xII")

# one record: (family, state, local addr bytes, local port, remote addr bytes,
#              remote port, uid, inode)
Record = tuple[int, int, bytes, int, bytes, int, int, int]


def _swap16(x: int) -> int:
    return ((x & 0xFF) << 8) | (x >> 8)


class SockDiag:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  NETLINK_SOCK_DIAG)
        self.sock.bind((0, 0))
        self.buf = bytearray(1 << 16)
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def dump(self, family: int, states: Iterable[int]) -> list[Record]:
        mask = 0
        for st in states:
            mask |= 1 << st
        self.seq += 1
        req = _REQ.pack(family, socket.IPPROTO_TCP, 0, mask)
        hdr = _NLMSGHDR.pack(_NLMSGHDR.size + len(req), SOCK_DIAG_BY_FAMILY,
                             NLM_F_REQUEST | NLM_F_DUMP, self.seq, 0)
        self.sock.send(hdr + req)
        out: list[Record] = []
        unpack_hdr = _NLMSGHDR.unpack_from
        unpack_msg = _MSG.unpack_from
        buf = self.buf
        v4 = family == socket.AF_INET
        while True:
            n = self.sock.recv_into(buf)
            off = 0
            while off + 16 <= n:
                length, mtype, _, seq, _ = unpack_hdr(buf, off)
                if length < 16:
                    return out
                if mtype == NLMSG_DONE:
                    return out
                if mtype == NLMSG_ERROR:
                    err = -struct.unpack_from("=i", buf, off + 16)[0]
                    raise OSError(err, os.strerror(err))
                if seq == self.seq:
                    fam, st, sp, dp, src, dst, uid, inode = unpack_msg(buf, off + 16)
                    if v4:
                        src, dst = src[:4], dst[:4]
                    out.append((fam, st, src, _swap16(sp), dst, _swap16(dp), uid, inode))
                off += (length + 3) & ~3
