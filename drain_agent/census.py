"""Connection census: the pod's in-flight TCP connections, minus the proxy's own.

One dump of the pod's TCP sockets (netlink sock_diag, filtered by state in the kernel;
``/proc/net/tcp{,6}`` as the fallback) plus a cached map of the proxy processes' socket
inodes, found with psutil. The cache is refreshed only when a counted socket could
belong to a proxy process and is not in it yet, so a steady poll costs one dump and no
walk over ``/proc/*/fd``.
"""

from __future__ import annotations

import operator
import os
import socket
import struct
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import compress
from typing import overload

import psutil

from drain_agent import procnet
from drain_agent.sockdiag import Record, SockDiag, Table, swap16

DEFAULT_PROXY_NAMES = ("envoy", "pilot-agent")
DEFAULT_EXCLUDED_PORTS = "15000-15090"
# ESTABLISHED, SYN_SENT, SYN_RECV (and NEW_SYN_RECV, the request-socket spelling).
BASE_STATES = frozenset({1, 2, 3, 12})
CLOSE_WAIT = 8
INBOUND_PEER = "127.0.0.6"  # Istio's inbound passthrough source address (IPv4)
INBOUND_PEER6 = "::6"  # and its IPv6 twin (InboundPassthroughBindIpv6)


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
    raw: Sequence[tuple[Record, bool]]  # (socket, inbound?)
    inbound: int
    outbound: int
    excluded_proxy: int
    excluded_port: int
    not_counted_states: dict[str, int]
    app_ports: list[int]
    proxy_pids: list[int]
    seconds: float
    backend: str
    listening: frozenset[int] = frozenset()  # every LISTEN port, Istio's own included
    # False: a quick census stopped at the first chunk with a connection that counts, so
    # the counts are a lower bound (at least 1) and the excluded ones are not known
    complete: bool = True

    @property
    def total(self) -> int:
        return self.inbound + self.outbound

    def connections(self) -> list[Conn]:
        out = []
        for (fam, st, src, sp, dst, dp, uid, _), inbound in self.raw:
            out.append(
                Conn(
                    "inbound" if inbound else "outbound",
                    procnet.STATE_NAMES.get(st, str(st)),
                    procnet.addr_text(fam, src),
                    sp,
                    procnet.addr_text(fam, dst),
                    dp,
                    uid,
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
        top = sorted(groups.items(), key=lambda g: (-g[1], g[0]))[:limit]  # ties: stable
        return [{"direction": d, "endpoint": k, "count": n} for (d, k), n in top]

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
            "backend": self.backend,
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
    others: list[int] = field(default_factory=list)  # pids found by name (not the agent's)
    uids: set[int] = field(default_factory=set)
    inodes: set[int] = field(default_factory=set)
    scanned_at: float = -1e9
    scans: int = 0
    netns: int | None = None  # only processes in this network namespace (None: any)

    def _same_netns(self, pid: int) -> bool:
        if self.netns is None:
            return True
        try:
            return os.stat(f"{self.proc_root}/{pid}/ns/net").st_ino == self.netns
        except OSError:
            # unreadable (PermissionError): another user's process without our
            # capabilities, so not the proxy of the pod this agent runs in
            return False

    def find_processes(self) -> None:
        pids: list[int] = []
        uids: set[int] = set()
        for proc in psutil.process_iter(["name", "uids"]):
            try:
                info = proc.info
                name = info.get("name") or ""
                if proc.pid in self.own_pids or (name in self.names
                                                 and self._same_netns(proc.pid)):
                    pids.append(proc.pid)
                    u = info.get("uids")
                    if u is not None:
                        uids.update((u.real, u.effective))
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        self.pids = sorted(pids)
        self.others = [pid for pid in self.pids if pid not in self.own_pids]
        self.uids = uids | {os.geteuid()}

    def socket_inodes(self, pid: int) -> set[int]:
        fd_dir = f"{self.proc_root}/{pid}/fd"
        found: set[int] = set()
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
                found.add(int(target[8:-1]))
        return found

    def refresh(self, only_if_changed: bool = False) -> None:
        """Re-find the proxy processes and re-read their socket inodes (with
        ``only_if_changed``, the inodes only when the set of processes changed)."""
        before = self.pids
        self.find_processes()
        if only_if_changed and self.scans and self.pids == before:
            self.scanned_at = time.monotonic()
            return
        inodes: set[int] = set()
        for pid in self.pids:
            inodes |= self.socket_inodes(pid)
        self.inodes = inodes
        self.scanned_at = time.monotonic()
        self.scans += 1


def _netns_of(net_dir: str) -> int | None:
    """The network namespace whose tables ``net_dir`` shows (``/proc/net``: ours)."""
    base = os.path.dirname(os.path.normpath(net_dir))
    try:
        return os.stat(os.path.join(base, "self" if base == "/proc" else "", "ns/net")).st_ino
    except OSError:
        return None


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
        backend: str = "auto",
        all_states: bool = False,
    ) -> None:
        if excluded_ports is None:
            excluded_ports = parse_ports(DEFAULT_EXCLUDED_PORTS)
        self.excluded = frozenset(excluded_ports)
        self.app_ports: set[int] = set(app_ports)
        self.states = BASE_STATES | ({CLOSE_WAIT} if count_close_wait else frozenset())
        # LISTEN is read to learn the application's ports; the rest only for reports
        self.read_states = procnet.ALL_STATES if all_states else self.states | {procnet.LISTEN}
        self.net_dir = net_dir
        self.inbound_peers = frozenset(
            (*procnet.v4_and_mapped(INBOUND_PEER), socket.inet_pton(socket.AF_INET6, INBOUND_PEER6))
        )
        # the first and last 32-bit words of those addresses, as the kernel's columns read
        self._peer_words = (
            frozenset(struct.unpack("=I", a[:4])[0] for a in self.inbound_peers),
            frozenset(struct.unpack("=I", a[-4:])[0] for a in self.inbound_peers),
        )
        self._sw_excluded: frozenset[int] | None = None
        self.owners = ProxyOwnership(frozenset(proxy_names), netns=_netns_of(net_dir))
        if own_pids is not None:
            self.owners.own_pids = frozenset(own_pids)
        self.rescan_seconds = rescan_seconds
        # inode -> how many fresh scans did not attribute it to the proxy; trusted at 2
        # (an accepted socket is in the table before accept() gives the proxy its fd)
        self.not_proxy: dict[int, int] = {}
        self.diag: SockDiag | None = None
        if backend not in ("auto", "netlink", "proc"):
            raise ValueError(f"unknown census backend {backend!r}")
        if backend == "netlink" or (backend == "auto" and net_dir == "/proc/net"):
            try:
                self.diag = SockDiag()
                self._dump()
            except OSError:
                if backend == "netlink":
                    raise
                self.close()

    @property
    def backend(self) -> str:
        return "netlink" if self.diag is not None else "proc"

    def close(self) -> None:
        if self.diag is not None:
            self.diag.close()
            self.diag = None

    def _dump(self) -> list[Record]:
        if self.diag is not None:
            return self.diag.dump(socket.AF_INET, self.read_states) + self.diag.dump(
                socket.AF_INET6, self.read_states
            )
        return procnet.read_records(self.net_dir, self.read_states)

    def run(self, quick: bool = False) -> CensusResult:
        """The census. ``quick``: through netlink, stop reading as soon as a connection
        that counts whatever the proxy map says has been seen (the kernel then never
        builds the other records): enough to know the pod is not drained; a census that
        finds nothing reads everything, so "nothing in flight" is always exact."""
        t0 = time.perf_counter()
        owners = self.owners
        if owners.scans == 0 or time.monotonic() - owners.scanned_at > self.rescan_seconds:
            owners.refresh(only_if_changed=True)
        if self.diag is not None and self.read_states == self.states | {procnet.LISTEN}:
            try:
                t, complete = self.diag.table(self.states, self._counts_surely if quick else None)
                listening = self.diag.table((procnet.LISTEN,))[0].records()
                if not complete:
                    return self._partial(t0, t, listening)
                return self._run_table(t0, t, listening)
            except OSError:  # netlink refused mid-way: fall back for good
                self.close()
        try:
            records = self._dump()
        except OSError:  # netlink refused mid-way: fall back for good
            self.close()
            records = self._dump()
        states = self.states
        excluded = self.excluded
        proxy_uids = owners.uids
        known = owners.inodes
        not_proxy = self.not_proxy
        cands: list[Record] = []
        unknown: set[int] = set()
        other: Counter[int] = Counter()
        listeners: list[Record] = []
        by_port = 0
        for rec in records:
            st = rec[1]
            if st not in states:
                if st == procnet.LISTEN:
                    listeners.append(rec)
                else:
                    other[st] += 1
                continue
            if rec[3] in excluded:
                by_port += 1
                continue
            cands.append(rec)
            inode = rec[7]
            if rec[6] in proxy_uids and inode not in known and not_proxy.get(inode, 0) < 2:
                unknown.add(inode)
        if unknown:
            owners.refresh()
            for inode in unknown - owners.inodes:
                not_proxy[inode] = not_proxy.get(inode, 0) + 1
        proxy_inodes = owners.inodes
        for rec in listeners:
            if rec[3] not in excluded and rec[7] not in proxy_inodes:
                self.app_ports.add(rec[3])
        app_ports = self.app_ports
        peers = self.inbound_peers
        raw: list[tuple[Record, bool]] = []
        n_in = n_out = n_proxy = 0
        for rec in cands:
            if rec[7] in proxy_inodes:
                n_proxy += 1
                continue
            inbound = rec[3] in app_ports or rec[4] in peers
            raw.append((rec, inbound))
            if inbound:
                n_in += 1
            else:
                n_out += 1
        if len(not_proxy) > len(raw):
            live = {rec[7] for rec, _ in raw}
            self.not_proxy = {k: v for k, v in not_proxy.items() if k in live}
        return CensusResult(
            raw=raw,
            inbound=n_in,
            outbound=n_out,
            excluded_proxy=n_proxy,
            excluded_port=by_port,
            not_counted_states={
                procnet.STATE_NAMES.get(k, str(k)): v for k, v in sorted(other.items())
            },
            app_ports=sorted(app_ports),
            proxy_pids=list(owners.pids),
            seconds=time.perf_counter() - t0,
            backend=self.backend,
            listening=frozenset(rec[3] for rec in listeners),
        )

    def _sw_excluded_ports(self) -> frozenset[int]:
        if self._sw_excluded is None:
            self._sw_excluded = frozenset(map(swap16, self.excluded))
        return self._sw_excluded

    def _surely_counted(self, t: Table, first: int) -> list[int]:
        """Rows from ``first`` that count whatever a fresh proxy map would say: not on an
        excluded port, not the proxy's, and not possibly the proxy's (a proxy uid's
        socket missing from the map and not yet trusted)."""
        excluded, known = self._sw_excluded_ports(), self.owners.inodes
        uids, trusted = self.owners.uids, self.not_proxy
        return [i for i, sp, ino, uid in zip(range(first, len(t)), t.sport[first:],
                                             t.inode[first:], t.uid[first:], strict=True)
                if sp not in excluded and ino not in known
                and (uid not in uids or trusted.get(ino, 0) >= 2)]

    def _counts_surely(self, t: Table, first: int) -> bool:
        return bool(self._surely_counted(t, first))

    def _partial(self, t0: float, t: Table, listeners: list[Record]) -> CensusResult:
        """What a quick census saw before it stopped: a lower bound."""
        self._learn_app_ports(listeners)
        idx = self._surely_counted(t, 0)
        sw_app = frozenset(map(swap16, self.app_ports))
        inbound = [t.sport[i] in sw_app or t.record_at(i)[4] in self.inbound_peers for i in idx]
        n_in = inbound.count(True)
        return CensusResult(
            raw=_LazyRaw(t, idx, inbound), inbound=n_in, outbound=len(idx) - n_in,
            excluded_proxy=0, excluded_port=0, not_counted_states={},
            app_ports=sorted(self.app_ports), proxy_pids=list(self.owners.pids),
            seconds=time.perf_counter() - t0, backend=self.backend,
            listening=frozenset(rec[3] for rec in listeners), complete=False,
        )

    def _learn_app_ports(self, listeners: list[Record]) -> None:
        proxy_inodes = self.owners.inodes
        for rec in listeners:
            if rec[3] not in self.excluded and rec[7] not in proxy_inodes:
                self.app_ports.add(rec[3])

    def _run_table(self, t0: float, t: Table, listeners: list[Record]) -> CensusResult:
        """``run`` over columns: the same decisions, made by C loops (map, compress and
        set lookups) instead of one Python iteration per socket; records are decoded only
        for the few sockets a rule needs to see whole, and for reports."""
        owners = self.owners
        kept = list(map(operator.not_, map(self._sw_excluded_ports().__contains__, t.sport)))
        idx = list(compress(range(len(t)), kept))
        inodes = list(compress(t.inode, kept))
        suspects = set(compress(inodes, map(owners.uids.__contains__, compress(t.uid, kept))))
        unknown = {i for i in suspects - owners.inodes if self.not_proxy.get(i, 0) < 2}
        if unknown:
            owners.refresh()
            for inode in unknown - owners.inodes:
                self.not_proxy[inode] = self.not_proxy.get(inode, 0) + 1
        self._learn_app_ports(listeners)
        mine = list(map(operator.not_, map(owners.inodes.__contains__, inodes)))
        idx = list(compress(idx, mine))
        sw_app = frozenset(map(swap16, self.app_ports))
        inbound = list(map(sw_app.__contains__, map(t.sport.__getitem__, idx)))
        self._inbound_by_peer(t, idx, inbound)
        if len(self.not_proxy) > len(idx):
            live = set(compress(inodes, mine))
            self.not_proxy = {k: v for k, v in self.not_proxy.items() if k in live}
        n_in = inbound.count(True)
        return CensusResult(
            raw=_LazyRaw(t, idx, inbound),
            inbound=n_in,
            outbound=len(idx) - n_in,
            excluded_proxy=len(inodes) - len(idx),
            excluded_port=len(t) - len(inodes),
            not_counted_states={},
            app_ports=sorted(self.app_ports),
            proxy_pids=list(owners.pids),
            seconds=time.perf_counter() - t0,
            backend=self.backend,
            listening=frozenset(rec[3] for rec in listeners),
        )

    def _inbound_by_peer(self, t: Table, idx: list[int], inbound: list[bool]) -> None:
        """Marks inbound the sockets whose peer is Istio's passthrough source: the first
        or last word of the remote address can only match for those (checked whole)."""
        first, last = self._peer_words
        maybe = map(operator.or_, map(first.__contains__, map(t.dst0.__getitem__, idx)),
                    map(last.__contains__, map(t.dst3.__getitem__, idx)))
        for k in compress(range(len(idx)), maybe):
            if not inbound[k] and t.record_at(idx[k])[4] in self.inbound_peers:
                inbound[k] = True


class _LazyRaw(Sequence[tuple[Record, bool]]):
    """The counted sockets as (record, inbound), decoded on first use (reports only)."""

    def __init__(self, t: Table, idx: list[int], inbound: list[bool]) -> None:
        self._t, self._idx, self._inbound = t, idx, inbound
        self._items: list[tuple[Record, bool]] | None = None

    def _all(self) -> list[tuple[Record, bool]]:
        if self._items is None:
            self._items = list(zip(map(self._t.record_at, self._idx), self._inbound, strict=True))
        return self._items

    @overload
    def __getitem__(self, i: int) -> tuple[Record, bool]: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[tuple[Record, bool]]: ...
    def __getitem__(
        self, i: int | slice
    ) -> tuple[Record, bool] | Sequence[tuple[Record, bool]]:
        return self._all()[i]

    def __len__(self) -> int:
        return len(self._idx)
