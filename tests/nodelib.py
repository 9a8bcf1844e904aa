"""Helpers behind the ``kube_node`` fixture: the real node of ``scripts/testcluster up --node``
(kubelet + containerd + runc + CNI bridge), its local images, and what tests read from
pods (Events, container states, termination times).

Images never come from a registry: they are one-layer tarballs imported with ``ctr``.

* ``HOST_IMAGE`` -- an almost empty image; pods mount the host's ``/usr`` read-only
  (``host_usr_volume``) and run ``/usr/bin/python3``, and the checkout at ``/repo``
  (``repo_volume``) for the project's scripts.
* ``drain_agent_image(binary)`` -- what ``manifests/drain-agent/Dockerfile`` builds: the
  one-file ``meshcfg-drain`` at ``/meshcfg-drain`` on the libraries the distroless base
  provides (glibc) plus zlib, uid 1337.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clusterlib import KubeCluster, poll

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from node import host as node_host  # noqa: E402, F401  (re-exported for tests)
from node import images, machinelock  # noqa: E402, F401  (machinelock re-exported for tests)

HOST_IMAGE = "meshcfg.local/host:1"
DRAIN_AGENT_IMAGE = "meshcfg/drain-agent:0.1.0"
# Debian packages standing in for distroless/base-debian12 (glibc) and the zlib the
# Dockerfile adds: PyInstaller's bootloader links libz.so.1
DRAIN_AGENT_PACKAGES = ("libc6", "zlib1g")
# rollout-test's load generator needs python3 on PATH (its default image is
# python:3.13-alpine): this host's Debian python3.11, its standard library and what it links
PYTHON_IMAGE = "meshcfg.local/python:3.11"
PYTHON_PACKAGES = ("python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib",
                   "libc6", "zlib1g", "libssl3", "libexpat1")


@dataclass
class KubeNode:
    cluster: KubeCluster
    info: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.info["node"])

    def ctr(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.info["ctr"], f"--address={self.info['containerd_socket']}",
                               "--namespace=k8s.io", *args],
                              capture_output=True, text=True, check=True)

    def has_image(self, name: str) -> bool:
        listed = self.ctr("images", "ls", "-q").stdout.split()
        return any(ref in (name, f"docker.io/{name}", f"docker.io/library/{name}")
                   for ref in listed)

    def ensure_image(self, name: str, entries: Iterable[images.Entry],
                     config: dict[str, Any] | None = None) -> None:
        """Import the image unless this node's containerd already has it (a restarted node
        starts with an empty containerd)."""
        if self.has_image(name):
            return
        tar = Path(self.info["images"]) / (name.replace("/", "_").replace(":", "_") + ".tar")
        images.write_image(tar, name, entries, config)
        images.import_image(Path(self.info["ctr"]), Path(self.info["containerd_socket"]), tar)

    def ensure_host_image(self) -> str:
        self.ensure_image(HOST_IMAGE, images.base_entries())
        return HOST_IMAGE

    def ensure_drain_agent_image(self, binary: Path) -> str:
        entries = [*images.package_entries(DRAIN_AGENT_PACKAGES),
                   images.text("etc/passwd", images.PASSWD),
                   images.text("etc/group", images.GROUP),
                   images.directory("tmp", 0o1777),
                   images.host_file("meshcfg-drain", binary, 0o755)]
        self.ensure_image(DRAIN_AGENT_IMAGE, entries,
                          {"Entrypoint": ["/meshcfg-drain"], "User": "1337:1337"})
        return DRAIN_AGENT_IMAGE

    def ensure_python_image(self) -> str:
        entries = [*images.package_entries(PYTHON_PACKAGES),
                   images.symlink("usr/bin/python3", "python3.11"),
                   images.text("etc/passwd", images.PASSWD), images.text("etc/group", images.GROUP),
                   images.directory("tmp", 0o1777)]
        self.ensure_image(PYTHON_IMAGE, entries,
                          {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"]})
        return PYTHON_IMAGE

    # ------------------------------------------------------------ reading pods

    def pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        proc = self.cluster.kubectl("get", "pod", name, "-n", namespace, "-o", "json",
                                    "--ignore-not-found", check=False)
        return json.loads(proc.stdout) if proc.returncode == 0 and proc.stdout.strip() else None

    def wait_running(self, namespace: str, name: str, timeout: float = 180) -> dict[str, Any]:
        """Wait until every container of the pod runs (and is ready when it has a probe)."""
        def running() -> dict[str, Any] | None:
            pod = self.pod(namespace, name)
            statuses = (pod or {}).get("status", {}).get("containerStatuses", [])
            if pod and statuses and all("running" in s.get("state", {}) and s.get("ready")
                                        for s in statuses):
                return pod
            return None
        try:
            result: dict[str, Any] = poll(running, timeout=timeout, interval=0.5,
                                          what=f"pod {namespace}/{name} running")
        except TimeoutError as e:
            raise AssertionError(f"{e}\n{self.describe(namespace, name)}") from None
        return result

    def wait_gone(self, namespace: str, name: str, timeout: float = 180) -> None:
        poll(lambda: self.pod(namespace, name) is None, timeout=timeout, interval=0.2,
             what=f"pod {namespace}/{name} gone")

    def describe(self, namespace: str, name: str) -> str:
        return self.cluster.kubectl("describe", "pod", name, "-n", namespace, check=False).stdout

    def events(self, namespace: str, pod: str) -> list[dict[str, Any]]:
        out = self.cluster.get_json("events", "-n", namespace,
                                    f"--field-selector=involvedObject.name={pod}")
        return list(out["items"])

    def logs(self, namespace: str, pod: str, container: str) -> str:
        return self.cluster.kubectl("logs", pod, "-n", namespace, "-c", container,
                                    check=False).stdout


def host_usr_volume() -> dict[str, Any]:
    return {"name": "host-usr", "hostPath": {"path": "/usr", "type": "Directory"}}


def repo_volume() -> dict[str, Any]:
    return {"name": "repo", "hostPath": {"path": str(ROOT), "type": "Directory"}}


HOST_MOUNTS = [{"name": "host-usr", "mountPath": "/usr", "readOnly": True},
               {"name": "repo", "mountPath": "/repo", "readOnly": True}]


def parse_time(text: str) -> float:
    """An RFC 3339 timestamp (as the API and our JSON logs write them) in epoch seconds."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def event_time(ev: dict[str, Any]) -> float:
    stamp = ev.get("eventTime") or ev.get("lastTimestamp") or ev.get("firstTimestamp")
    return parse_time(str(stamp))
