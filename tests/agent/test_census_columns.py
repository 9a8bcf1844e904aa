"""The census's column path (netlink, one dump for both families, C loops) decides
exactly as the per-record path does."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from agent_helpers import APP_UID, ROOT, Pod
from test_census import build_pod

COMPARE = (
    "import json\n"
    "from drain_agent.census import Census\n"
    "out = {}\n"
    "for b in ('netlink', 'proc'):\n"
    "    c = Census(backend=b)\n"
    "    d = c.run().to_dict()\n"
    "    d['connections'] = sorted(map(json.dumps, d['connections']))\n"
    "    d['listening'] = sorted(c.run().listening)\n"
    "    for k in ('censusSeconds', 'backend', 'proxyPids'):\n"
    "        d.pop(k)\n"
    "    out[b] = d\n"
    "print(json.dumps(out))\n"
)


def test_columns_agree_with_records(pod: Pod) -> None:
    build_pod(pod)
    pod.ns.ip("addr", "add", "::6/128", "dev", "lo")
    # an app that closed its listener: its accepted socket is inbound by its peer alone
    app = pod.hold({"comm": "app", "listen": [{"host": "::1", "port": 9191,
                                               "accept_once": True}]}, uid=APP_UID)
    pod.hold({"comm": "client", "connect": [{"host": "::1", "port": 9191, "bind": "::6"}]},
             uid=2000)
    assert app.stdout is not None and app.stdout.readline().strip() == "accepted"
    p = pod.ns.popen([sys.executable, "-c", COMPARE], stdout=subprocess.PIPE, text=True,
                     env=dict(os.environ, PYTHONPATH=str(ROOT)))
    out = json.loads(p.communicate(timeout=30)[0])
    assert out["netlink"] == out["proc"]
    conns = [json.loads(c) for c in out["netlink"]["connections"]]
    accepted = [c for c in conns if c["local"] == "::1:9191"]
    assert len(accepted) == 1 and accepted[0]["direction"] == "inbound", conns
    assert accepted[0]["remote"].startswith("::6:")
    assert 9191 not in out["netlink"]["applicationPorts"]  # closed before any census
    assert out["netlink"]["total"] == 10 + 2
    assert 15006 in out["netlink"]["listening"] and 8080 in out["netlink"]["listening"]
