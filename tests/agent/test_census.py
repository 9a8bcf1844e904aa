"""The census against real sockets held by real processes in a private netns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from agent_helpers import APP_UID, HELPER, PROXY_UID, ROOT, Pod
from harness.view import pod_env

from drain_agent.census import Census, parse_ports


def _wait_census(census: Census, pred: object, timeout: float = 10.0) -> object:
    end = time.monotonic() + timeout
    while True:
        res = census.run()
        if pred(res):  # type: ignore[operator]
            return res
        assert time.monotonic() < end, res.to_dict()
        time.sleep(0.05)


def build_pod(pod: Pod) -> None:
    # application (uid 1000): IPv4 and IPv6 listeners, one call to the proxy's outbound port
    pod.hold(
        {"comm": "app", "listen": [{"host": "0.0.0.0", "port": 8080},
                                   {"host": "::", "port": 9090}]},
        uid=APP_UID,
    )
    # proxy (uid 1337, named envoy): its own listeners + 2 pooled connections to the app
    pod.hold(
        {"comm": "envoy",
         "listen": [{"host": "0.0.0.0", "port": 15006}, {"host": "127.0.0.1", "port": 15001},
                    {"host": "127.0.0.1", "port": 15000}],
         "connect": [{"host": "127.0.0.1", "port": 8080, "bind": "127.0.0.6", "count": 2}]},
        uid=PROXY_UID,
    )
    # the application's outbound call through the proxy (local port ephemeral: counts)
    pod.hold({"comm": "app", "connect": [{"host": "127.0.0.1", "port": 15001}]}, uid=APP_UID)
    # a client inside the pod on IPv6, and a downstream client of the proxy on 15006
    pod.hold({"comm": "client", "connect": [{"host": "::1", "port": 9090, "count": 3},
                                            {"host": "127.0.0.1", "port": 15006}]},
             uid=2000)


def test_census_counts_what_is_in_flight(pod: Pod) -> None:
    build_pod(pod)
    census = Census(net_dir=pod.net_dir)
    res = census.run()
    d = res.to_dict()
    # app<-proxy pool x2 (inbound, peer 127.0.0.6); app->15001 (outbound);
    # client->[::1]:9090 x3 (client side outbound, app side inbound); client->15006
    # (the client's side counts: a pod process talking to the proxy)
    assert res.inbound == 2 + 3, d
    assert res.outbound == 1 + 3 + 1, d
    assert 8080 in res.app_ports and 9090 in res.app_ports
    assert 15006 not in res.app_ports  # the proxy's listeners are not application ports
    # proxy-owned: its 2 pool sockets + client 15006 is local-port excluded on the proxy side
    assert res.excluded_proxy == 2, d
    # 15001 accepted side + 15006 accepted side are on Istio ports
    assert res.excluded_port == 2, d
    conns = res.connections()
    assert {c.remote_ip for c in conns if c.direction == "inbound" and c.local_port == 8080} == {
        "127.0.0.6"
    }
    assert any(c.local_ip == "::1" and c.local_port == 9090 for c in conns)
    assert all(c.state == "ESTABLISHED" for c in conns)


def test_sockets_of_vanishing_processes_and_listen_only(pod: Pod) -> None:
    app = pod.hold({"comm": "app", "listen": [{"host": "0.0.0.0", "port": 8080}]}, uid=APP_UID)
    census = Census(net_dir=pod.net_dir)
    assert census.run().total == 0  # LISTEN never counts
    client = pod.hold({"comm": "client", "connect": [{"host": "127.0.0.1", "port": 8080}]},
                      uid=2000)
    assert census.run().total == 2
    pod.release(client)
    # client closed first: its side goes TIME_WAIT (not counted); app side CLOSE_WAIT
    res = _wait_census(census, lambda r: r.total == 0)
    assert res.total == 0
    strict = Census(net_dir=pod.net_dir, count_close_wait=True)
    assert strict.run().total == 1  # the app never closed its side
    assert app.poll() is None


def test_time_wait_is_not_counted(pod: Pod) -> None:
    pod.hold({"comm": "app", "listen": [{"host": "127.0.0.1", "port": 8080,
                                         "close_accepted": True}]}, uid=APP_UID)
    pod.hold({"comm": "client", "connect": [{"host": "127.0.0.1", "port": 8080, "count": 3,
                                             "close": True}]}, uid=2000)
    census = Census(net_dir=pod.net_dir, all_states=True)
    res = _wait_census(census, lambda r: "TIME_WAIT" in r.not_counted_states)
    assert res.total == 0


def test_proxy_names_and_ports_are_configurable(pod: Pod) -> None:
    pod.hold({"comm": "app", "listen": [{"host": "127.0.0.1", "port": 8080},
                                        {"host": "127.0.0.1", "port": 3000}]}, uid=APP_UID)
    pod.hold({"comm": "sidecar", "connect": [{"host": "127.0.0.1", "port": 8080}]},
             uid=PROXY_UID)
    pod.hold({"comm": "client", "connect": [{"host": "127.0.0.1", "port": 3000}]}, uid=2000)
    assert Census(net_dir=pod.net_dir).run().total == 4
    custom = Census(net_dir=pod.net_dir, proxy_names=["sidecar"],
                    excluded_ports=parse_ports("3000"))
    res = custom.run()
    # sidecar's own socket excluded; app side of 8080 stays; 3000 app side excluded by port
    assert res.total == 2, res.to_dict()
    assert res.excluded_proxy == 1 and res.excluded_port == 1


def test_own_sockets_are_excluded(pod: Pod) -> None:
    pod.hold({"comm": "app", "listen": [{"host": "127.0.0.1", "port": 8080}]}, uid=APP_UID)
    pid = pod.procs[0].pid
    census = Census(net_dir=pod.net_dir, proxy_names=[], own_pids=[os.getpid()])
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    own_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        os.setns(fd, os.CLONE_NEWNET) if hasattr(os, "setns") else _setns(fd)
        import socket

        s = socket.create_connection(("127.0.0.1", 8080))
        _setns(own_ns)
        res = census.run()
        assert res.total == 1 and res.excluded_proxy == 1, res.to_dict()
        s.close()
    finally:
        _setns(own_ns)
        os.close(fd)
        os.close(own_ns)


def _setns(fd: int) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.setns(fd, 0x40000000) == 0


def test_census_cli_json(pod: Pod) -> None:
    build_pod(pod)
    env = dict(os.environ, MESHCFG_DRAIN_NET_DIR=pod.net_dir)
    out = subprocess.run(
        [sys.executable, "-m", "drain_agent", "census", "-o", "json"],
        env=env, capture_output=True, text=True, check=True, cwd=ROOT,
    )
    d = json.loads(out.stdout)
    assert d["total"] == 10 and d["inbound"] == 5
    assert {"direction": "inbound", "endpoint": ":9090", "count": 3} in d["summary"]
    text = subprocess.run(
        [sys.executable, "-m", "drain_agent", "census", "--net-dir", pod.net_dir],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout
    assert text.startswith("in flight: 10 (inbound 5, outbound 5)")
    assert Path(pod.net_dir).exists()


def test_netlink_and_proc_agree(pod: Pod) -> None:
    build_pod(pod)
    pod.hold({"comm": "app", "listen": [{"host": "127.0.0.1", "port": 7000,
                                         "close_accepted": True}]}, uid=APP_UID)
    pod.hold({"comm": "client", "connect": [{"host": "127.0.0.1", "port": 7000, "count": 2,
                                             "close": True}]}, uid=2000)
    code = (
        "import json\n"
        "from drain_agent.census import Census\n"
        "out = {}\n"
        "for b in ('netlink', 'proc'):\n"
        "    r = Census(backend=b, all_states=True).run()\n"
        "    d = r.to_dict()\n"
        "    d['connections'] = sorted(map(json.dumps, d['connections']))\n"
        "    for k in ('censusSeconds', 'backend', 'proxyPids'):\n"
        "        d.pop(k)\n"
        "    out[b] = d\n"
        "print(json.dumps(out))\n"
    )
    p = pod.ns.popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                     env=dict(os.environ, PYTHONPATH=str(ROOT)))
    out = json.loads(p.communicate(timeout=30)[0])
    assert out["netlink"] == out["proc"]
    assert out["netlink"]["total"] == 10
    assert "TIME_WAIT" in out["netlink"]["notCountedStates"]


def test_processes_vanishing_mid_scan(pod: Pod) -> None:
    """Proxy-named processes that come and go (and fds that close) never break a census."""
    app_with_client = {"comm": "app", "listen": [{"host": "127.0.0.1", "port": 8080}]}
    pod.hold(app_with_client, uid=APP_UID)
    census = Census(net_dir=pod.net_dir, rescan_seconds=0.0)  # rescan at every poll
    churn = [
        pod.ns.popen([pod.view.python, "-c",
                      "import ctypes, socket, time\n"
                      "ctypes.CDLL(None).prctl(15, b'envoy', 0, 0, 0)\n"
                      "s = socket.create_connection(('127.0.0.1', 8080))\n"
                      "time.sleep(0.01 * (__import__('os').getpid() % 20))\n"],
                     uid=PROXY_UID, view=pod.view)
        for _ in range(30)
    ]
    seen = 0
    while any(p.poll() is None for p in churn):
        res = census.run()
        seen = max(seen, res.excluded_proxy)
        assert res.total >= 0
    for p in churn:
        p.wait()
    # whatever was caught mid-life was attributed to the proxy; nothing raised
    assert census.owners.scans >= 2
    assert census.run().excluded_proxy == 0
    # a pid that is gone, or whose fds cannot be read, gives no inodes and no error
    assert census.owners.socket_inodes(2**22 + 12345) == set()


def test_a_proxy_named_process_whose_netns_is_unreadable_is_not_the_proxy(pod: Pod) -> None:
    """A root process named envoy outside the pod (another pod's, a test's on the node): the
    agent (uid 1337) cannot read its network namespace, so it is not this pod's proxy, and
    its exit must not read as "the proxy exited during the drain"."""
    proxy = pod.hold({"comm": "envoy", "listen": [{"host": "127.0.0.1", "port": 15000}]},
                     uid=PROXY_UID)
    foreign = subprocess.Popen([sys.executable, HELPER, json.dumps({"comm": "envoy"})],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert foreign.stdout is not None and foreign.stdout.readline().strip() == "ready"
        code = ("import json\n"
                "from drain_agent.census import Census\n"
                "c = Census()\n"
                "c.run()\n"
                "print(json.dumps(c.owners.others))\n")
        p = pod.ns.popen([pod.view.python, "-c", code], uid=PROXY_UID, view=pod.view,
                         env=pod_env(str(ROOT)), stdout=subprocess.PIPE, text=True)
        others = json.loads(p.communicate(timeout=30)[0])
        assert proxy.pid in others and foreign.pid not in others, (others, foreign.pid)
    finally:
        foreign.kill()
        foreign.wait()


QUICK_CODE = (
    "import json\n"
    "from drain_agent.census import Census\n"
    "c = Census(backend='netlink')\n"
    "full = c.run()\n"
    "quick = c.run(quick=True)\n"
    "again = c.run()\n"
    "print(json.dumps({k: [r.complete, r.total, r.excluded_proxy + r.excluded_port]\n"
    "                  for k, r in (('full', full), ('quick', quick), ('again', again))}))\n"
)


def _quick(pod: Pod) -> dict[str, list[int]]:
    p = pod.ns.popen([sys.executable, "-c", QUICK_CODE], stdout=subprocess.PIPE, text=True,
                     env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return dict(json.loads(p.communicate(timeout=60)[0]))


def test_a_quick_census_stops_at_the_first_connection_that_counts(pod: Pod) -> None:
    """1,500 connections in flight (3,000 sockets, many netlink chunks): the quick census
    stops after the first chunk, a lower bound; the next full one counts them all again
    (the abandoned dump leaves nothing behind on the netlink socket)."""
    pod.hold({"comm": "app", "listen": [{"host": "127.0.0.1", "port": 8080}]}, uid=APP_UID)
    pod.hold({"comm": "client", "connect": [{"host": "127.0.0.1", "port": 8080,
                                             "count": 1500}]}, uid=2000)
    out = _quick(pod)
    assert out["full"] == [True, 3000, 0], out
    complete, total, _ = out["quick"]
    assert not complete and 1 <= total < 1000, out
    assert out["again"] == out["full"], out


def test_a_quick_census_that_finds_nothing_has_read_everything(pod: Pod) -> None:
    """Only the proxy's own connections (to its own listener): nothing counts, so the quick
    census reads the whole dump and "nothing in flight" is exact, as in a full one."""
    pod.hold({"comm": "envoy", "listen": [{"host": "127.0.0.1", "port": 15001}],
              "connect": [{"host": "127.0.0.1", "port": 15001, "count": 600}]}, uid=PROXY_UID)
    out = _quick(pod)
    assert out["full"] == [True, 0, 1200], out
    assert out["quick"] == out["full"], out
