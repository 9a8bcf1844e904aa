"""Connection census: the pod's in-flight TCP connections, minus the proxy's own.

One pass over ``/proc/net/tcp{,6}`` (the pod's whole network namespace) plus a cached
map of the proxy processes' socket inodes, found with psutil. The cache is refreshed
only when a counted socket could belong to a proxy process and is not in it yet, so a
steady poll costs one read of the tables and no walk over ``/proc/*/fd``.
"""

from __future__ import annotations

import os
import socket
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import psutil

from drain_agent import procnet

DEFAULT_PROXY_NAMES = ("envoy", "pilot-agent")
DEFAULT_EXCLUDED_PORTS = "15000-15090"
# ESTABLISHED, SYN_SENT, SYN_RECV (and NEW_SYN_RECV, the request-socket spelling).
BASE_STATES = frozenset({"01", "02", "03", "0C"})
CLOSE_WAIT = "08"
INBOUND_PEER = "127.0.0.6"  # Istio's inbound passthrough source address


def parse_ports(spec: str) -> frozenset[int]:
    """``"15000-15090,8080"`` -> the set of ports. Empty string -> empty set."""
    ports: set[int] = set()
    for part in spec.replace(" ", "").split(","):
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        start = int(lo)
        end = int(hi) if sep else start
        if not (0 < start <= end <= 65535):
            raise ValueError(f"invalid port or range {part!r}")
        ports.update(range(start, end + 1))
    return frozenset(ports)


@dataclass(frozen=True, slots=True)
class Conn:
    """A counted connection, decoded for reports."""

    direction: str  # "inbound" | "outbound"
    state: str
    local_ip: str
    local_port: int
    remote_ip: str
    remote_port: int
    uid: int

    def to_dict(self) -> dict[str, object]:
        return {
            "direction": self.direction,
            "state": self.state,
            "local": f"{self.local_ip}:{self.local_port}",
            "remote": f"{self.remote_ip}:{self.remote_port}",
            "uid": self.uid,
        }


@dataclass(slots=True)
class CensusResult:
    raw: list[tuple[procnet.RawSocket, bool]]  # (socket, inbound?)
    inbound: int
    outbound: int
    excluded_proxy: int
    excluded_port: int
    not_counted_states: dict[str, int]
    app_ports: list[int]
    proxy_pids: list[int]
    seconds: float

    @property
    def total(self) -> int:
        return self.inbound + self.outbound

    def connections(self) -> list[Conn]:
        out = []
        for s, inbound in self.raw:
            out.append(
                Conn(
                    "inbound" if inbound else "outbound",
                    procnet.STATE_NAMES.get(s.state, s.state),
                    procnet.decode_addr(s.family, s.local_addr),
                    int(s.local_port, 16),
                    procnet.decode_addr(s.family, s.remote_addr),
                    int(s.remote_port, 16),
                    s.uid,
                )
            )
        return out

    def summary(self, limit: int = 10) -> list[dict[str, object]]:
        """Open connections grouped: inbound by local port, outbound by peer."""
        groups: Counter[tuple[str, str]] = Counter()
        for c in self.connections():
            inbound = c.direction == "inbound"
            key = f":{c.local_port}" if inbound else f"{c.remote_ip}:{c.remote_port}"
            groups[(c.direction, key)] += 1
        return [
            {"direction": d, "endpoint": k, "count": n}
            for (d, k), n in groups.most_common(limit)
        ]

    def to_dict(self, with_connections: bool = True) -> dict[str, object]:
        d: dict[str, object] = {
            "total": self.total,
            "inbound": self.inbound,
            "outbound": self.outbound,
            "excluded": {"proxy": self.excluded_proxy, "port": self.excluded_port},
            "notCountedStates": self.not_counted_states,
            "applicationPorts": self.app_ports,
            "proxyPids": self.proxy_pids,
            "censusSeconds": round(self.seconds, 6),
            "summary": self.summary(),
        }
        if with_connections:
            d["connections"] = [c.to_dict() for c in self.connections()]
        return d


@dataclass
class ProxyOwnership:
    """Which socket inodes belong to the proxy's processes (or to this agent)."""

    names: frozenset[str]
    own_pids: frozenset[int] = field(default_factory=lambda: frozenset({os.getpid()}))
    proc_root: str = "/proc"
    pids: list[int] = field(default_factory=list)
    uids: set[int] = field(default_factory=set)
    inodes: set[str] = field(default_factory=set)
    scanned_at: float = -1e9
    scans: int = 0

    def find_processes(self) -> None:
        pids: list[int] = []
        uids: set[int] = set()
        for proc in psutil.process_iter(["name", "uids"]):
            try:
                info = proc.info
                name = info.get("name") or ""
                if proc.pid in self.own_pids or name in self.names:
                    pids.append(proc.pid)
                    u = info.get("uids")
                    if u is not None:
                        uids.update((u.real, u.effective))
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        self.pids = sorted(pids)
        self.uids = uids | {os.geteuid()}

    def socket_inodes(self, pid: int) -> set[str]:
        fd_dir = f"{self.proc_root}/{pid}/fd"
        found: set[str] = set()
        try:
            fds = os.listdir(fd_dir)
        except (FileNotFoundError, PermissionError, ProcessLookupError, NotADirectoryError):
            return found
        for fd in fds:
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
            except OSError:  # fd closed or process gone mid-scan
                continue
            if target.startswith("socket:["):
                found.add(target[8:-1])
        return found

    def refresh(self) -> None:
        """Re-find the proxy processes and re-read their socket inodes."""
        self.find_processes()
        inodes: set[str] = set()
        for pid in self.pids:
            inodes |= self.socket_inodes(pid)
        self.inodes = inodes
        self.scanned_at = time.monotonic()
        self.scans += 1


class Census:
    """Counts the pod's in-flight connections; keep one instance across polls."""

    def __init__(
        self,
        proxy_names: Iterable[str] = DEFAULT_PROXY_NAMES,
        excluded_ports: frozenset[int] | None = None,
        app_ports: Iterable[int] = (),
        count_close_wait: bool = False,
        net_dir: str = "/proc/net",
        own_pids: Iterable[int] | None = None,
        rescan_seconds: float = 5.0,
    ) -> None:
        if excluded_ports is None:
            excluded_ports = parse_ports(DEFAULT_EXCLUDED_PORTS)
        self.excluded_hex = frozenset(procnet.port_hex(p) for p in excluded_ports)
        self.app_ports_hex: set[str] = {procnet.port_hex(p) for p in app_ports}
        self.states = BASE_STATES | ({CLOSE_WAIT} if count_close_wait else frozenset())
        self.net_dir = net_dir
        v4, v6 = procnet.encode_v4(INBOUND_PEER)
        self.inbound_peers = frozenset({v4, v6})
        self.owners = ProxyOwnership(frozenset(proxy_names))
        if own_pids is not None:
            self.owners.own_pids = frozenset(own_pids)
        self.rescan_seconds = rescan_seconds
        # inode -> how many fresh scans did not attribute it to the proxy; trusted at 2
        # (an accepted socket is in the table before accept() gives the proxy its fd)
        self.not_proxy: dict[str, int] = {}

    def _classify(
        self, lines_by_family: list[tuple[int, list[str]]]
    ) -> tuple[list[procnet.RawSocket], set[str], Counter[str], int, list[procnet.RawSocket]]:
        states = self.states
        excluded = self.excluded_hex
        proxy_uids = self.owners.uids
        cands: list[procnet.RawSocket] = []
        unknown: set[str] = set()
        other: Counter[str] = Counter()
        by_port = 0
        listeners: list[procnet.RawSocket] = []
        known = self.owners.inodes
        not_proxy = self.not_proxy
        for family, lines in lines_by_family:
            for line in lines:
                f = line.split()
                if len(f) < 10:
                    continue
                st = f[3]
                if st not in states:
                    if st == procnet.LISTEN:
                        s = procnet.parse_line(family, line)
                        if s is not None:
                            listeners.append(s)
                    else:
                        other[st] += 1
                    continue
                lport = f[1][-4:]
                if lport in excluded:
                    by_port += 1
                    continue
                local, _, _ = f[1].partition(":")
                remote, _, rport = f[2].partition(":")
                uid = int(f[7])
                inode = f[9]
                s = procnet.RawSocket(family, local, lport, remote, rport, st, uid, inode)
                cands.append(s)
                if uid in proxy_uids and inode not in known and not_proxy.get(inode, 0) < 2:
                    unknown.add(inode)
        return cands, unknown, other, by_port, listeners

    def run(self) -> CensusResult:
        t0 = time.perf_counter()
        owners = self.owners
        if owners.scans == 0 or time.monotonic() - owners.scanned_at > self.rescan_seconds:
            owners.refresh()
        tables = [(fam, procnet.read_table(p)) for fam, p in procnet.table_paths(self.net_dir)]
        cands, unknown, other, by_port, listeners = self._classify(tables)
        if unknown:
            owners.refresh()
            for inode in unknown - owners.inodes:
                self.not_proxy[inode] = self.not_proxy.get(inode, 0) + 1
        proxy_inodes = owners.inodes
        for s in listeners:
            if s.local_port not in self.excluded_hex and s.inode not in proxy_inodes:
                self.app_ports_hex.add(s.local_port)
        app_ports = self.app_ports_hex
        peers = self.inbound_peers
        raw: list[tuple[procnet.RawSocket, bool]] = []
        n_in = n_out = n_proxy = 0
        live: set[str] = set()
        for s in cands:
            if s.inode in proxy_inodes:
                n_proxy += 1
                continue
            live.add(s.inode)
            inbound = s.local_port in app_ports or s.remote_addr in peers
            raw.append((s, inbound))
            if inbound:
                n_in += 1
            else:
                n_out += 1
        if len(self.not_proxy) > len(live):
            self.not_proxy = {k: v for k, v in self.not_proxy.items() if k in live}
        return CensusResult(
            raw=raw,
            inbound=n_in,
            outbound=n_out,
            excluded_proxy=n_proxy,
            excluded_port=by_port,
            not_counted_states={procnet.STATE_NAMES.get(k, k): v for k, v in sorted(other.items())},
            app_ports=sorted(int(p, 16) for p in app_ports),
            proxy_pids=list(owners.pids),
            seconds=time.perf_counter() - t0,
        )


def family_name(family: int) -> str:
    return "tcp6" if family == socket.AF_INET6 else "tcp"
