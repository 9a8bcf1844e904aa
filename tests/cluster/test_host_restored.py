"""`scripts/testcluster node-down` leaves the host as it was before `up --node`: sysctls,
mounts, network namespaces, interfaces, cgroups, files under /run, /var, /etc, /opt, and
no node process left - after a normal stop, after kubelet was SIGKILLed, and after both
kubelet and containerd were SIGKILLed with a pod running.

The comparison is wider than what `down` restores (scripts/node/host.py): every mount,
interface and cgroup of the machine and the top two levels of /run, /var, /etc and /opt.
Other engineers' harness namespaces and veths ("mh1234abc", ...) may come and go
meanwhile; they are the only thing left out.
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clusterlib import KubeCluster, poll, run_testcluster
from nodelib import KubeNode, host_usr_volume, machinelock, node_host

pytestmark = [pytest.mark.cluster, pytest.mark.node]

# (/tmp is left out: every parallel session writes there; the node does not)
LISTED = ("/run", "/var/run", "/var/lib", "/var/log", "/etc", "/opt")


HARNESS_NAME = re.compile(r"m[a-z][hp]?\d+[0-9a-f]{3,4}")  # scripts/harness/netns.py


def others(name: str) -> bool:
    """Things parallel harness runs create: netns and veths, the subnet lock."""
    base = os.path.basename(name)
    return bool(HARNESS_NAME.fullmatch(base)) or "harness" in base


def listing() -> set[str]:
    found = set()
    for top in LISTED:
        for dirpath, dirs, files in os.walk(top):
            depth = dirpath[len(top):].count("/")
            for n in dirs + files:
                found.add(os.path.join(dirpath, n))
            if depth >= 1:
                dirs.clear()
    return {p for p in found if not others(p) and not p.startswith("/tmp/meshcfg-")}


def host_state() -> dict[str, Any]:
    snap = node_host.snapshot()
    return {
        "sysctls": snap.sysctls,
        "mounts": sorted(m for m in snap.mounts if not others(m)),
        "interfaces": sorted(i for i in snap.interfaces if not others(i)),
        "netns": sorted(n for n in snap.netns if not others(n)),
        "cgroups": sorted(snap.cgroups),
        "files": sorted(listing()),
        "processes": sorted(node_processes()),
    }


def node_processes() -> list[str]:
    return [argv0 for _, argv0 in node_host.processes()
            if argv0.endswith(("/kubelet", "/containerd", "/containerd-shim-runc-v2", "/runc"))]


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in before:
        if key == "sysctls":
            changed = {k: (v, after[key].get(k)) for k, v in before[key].items()
                       if after[key].get(k) != v}
            if changed:
                out[key] = changed
            continue
        added, removed = set(after[key]) - set(before[key]), set(before[key]) - set(after[key])
        if added or removed:
            out[key] = {"added": sorted(added), "removed": sorted(removed)}
    return out


@pytest.fixture
def node_down_first(kube_node: KubeNode, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """With our node up (kube_node: a cold build shows its progress), hold the machine's
    node lock for the whole test, so that no other session's node starts between the two
    snapshots; scripts/testcluster is told it is held."""
    with machinelock.held():
        monkeypatch.setenv("MESHCFG_NODE_MACHINE_LOCKED", "1")
        run_testcluster("node-down")
        yield
        run_testcluster("node-down")


def pid_of(cluster: KubeCluster, name: str) -> int:
    return int((cluster.kubeconfig.parent / f"{name}.pid").read_text())


def busy_pod(node: KubeNode, namespace: str) -> None:
    """A pod with what leaves traces: emptyDir, ServiceAccount token (tmpfs), hostPath,
    a network namespace with a veth on the bridge."""
    image = node.ensure_host_image()
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "busy", "namespace": namespace},
           "spec": {"nodeName": node.name, "terminationGracePeriodSeconds": 1,
                    "volumes": [host_usr_volume(), {"name": "scratch", "emptyDir": {}}],
                    "containers": [{"name": "c", "image": image, "imagePullPolicy": "Never",
                                    "command": ["/usr/bin/python3", "-c",
                                                "import time\nwhile True: time.sleep(1)"],
                                    "volumeMounts": [
                                        {"name": "host-usr", "mountPath": "/usr",
                                         "readOnly": True},
                                        {"name": "scratch", "mountPath": "/scratch"}]}]}}
    node.cluster.kubectl("apply", "-f", "-", input=json.dumps(pod))
    node.wait_running(namespace, "busy")


def start_node(cluster: KubeCluster) -> KubeNode:
    kubeconfig = Path(run_testcluster("up", "--node", "--hold", str(os.getpid())))
    info = json.loads((kubeconfig.parent / "node" / "info.json").read_text())
    return KubeNode(cluster, info)


@pytest.mark.parametrize("kill", [(), ("kubelet",), ("kubelet", "containerd")],
                         ids=["normal", "kubelet-sigkilled", "kubelet-and-containerd-sigkilled"])
def test_node_down_restores_the_host(kube_cluster: KubeCluster, test_namespace: str,
                                     node_down_first: None, kill: tuple[str, ...]) -> None:
    before = host_state()
    node = start_node(kube_cluster)
    busy_pod(node, test_namespace)
    during = host_state()
    # the node really changed the host (else this test would prove nothing)
    changed = diff(before, during)
    assert {"mounts", "interfaces", "netns", "cgroups", "processes"} <= set(changed), changed
    for name in kill:
        pid = pid_of(kube_cluster, name)
        os.kill(pid, signal.SIGKILL)
        poll(lambda pid=pid: not Path(f"/proc/{pid}").exists() or
             "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2], timeout=10,
             what=f"{name} to die")
    run_testcluster("node-down")
    assert diff(before, host_state()) == {}
