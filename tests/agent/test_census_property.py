"""The census's classification against a naive reference, on generated socket tables."""

from __future__ import annotations

import socket

from hypothesis import given, settings
from hypothesis import strategies as st

from drain_agent import procnet
from drain_agent.census import BASE_STATES, CLOSE_WAIT, Census, parse_ports
from drain_agent.sockdiag import Record

EXCLUDED = parse_ports("15000-15090")
PEER_V4, PEER_V6 = procnet.v4_and_mapped("127.0.0.6")
PROXY_UID = 1337

addrs = st.sampled_from([bytes([127, 0, 0, 1]), PEER_V4, bytes([10, 1, 2, 3])])
ports = st.sampled_from([8080, 9090, 15000, 15001, 15006, 15020, 15090, 15091, 40000, 50001])
records = st.lists(
    st.tuples(
        st.sampled_from(sorted(procnet.ALL_STATES)),
        addrs, ports, addrs, ports,
        st.sampled_from([1000, PROXY_UID, 0]),
        st.integers(1, 60),
    ),
    max_size=60,
)


class FixedCensus(Census):
    def __init__(self, recs: list[Record], proxy_inodes: set[int], **kw: object) -> None:
        super().__init__(backend="proc", **kw)  # type: ignore[arg-type]
        self.recs = recs
        self.owners.inodes = proxy_inodes
        self.owners.uids = {PROXY_UID}
        self.owners.scans = 1
        self.owners.scanned_at = 1e18
        self.owners.refresh = lambda only_if_changed=False: None  # type: ignore[method-assign]

    def _dump(self) -> list[Record]:
        return self.recs


def naive(recs: list[Record], proxy: set[int], close_wait: bool) -> tuple[int, int]:
    states = set(BASE_STATES) | ({CLOSE_WAIT} if close_wait else set())
    app_ports = {r[3] for r in recs if r[1] == procnet.LISTEN and r[3] not in EXCLUDED
                 and r[7] not in proxy}
    n_in = n_out = 0
    for _fam, state, _src, sport, dst, _dport, _uid, inode in recs:
        if state not in states or sport in EXCLUDED or inode in proxy:
            continue
        if sport in app_ports or dst in (PEER_V4, PEER_V6):
            n_in += 1
        else:
            n_out += 1
    return n_in, n_out


@settings(max_examples=300, deadline=None)
@given(records, st.sets(st.integers(1, 60)), st.booleans())
def test_classification_matches_the_reference(
    raw: list[tuple[int, bytes, int, bytes, int, int, int]], proxy: set[int], close_wait: bool
) -> None:
    recs: list[Record] = [(socket.AF_INET, s, a, p, b, q, u, i) for s, a, p, b, q, u, i in raw]
    res = FixedCensus(recs, proxy, count_close_wait=close_wait).run()
    assert (res.inbound, res.outbound) == naive(recs, proxy, close_wait)
    assert all(rec[1] not in (procnet.LISTEN, 6) for rec, _ in res.raw)  # never LISTEN/TIME_WAIT
