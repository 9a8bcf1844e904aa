"""Helpers behind the `kube_cluster` / `test_namespace` fixtures (see tests/conftest.py).

Everything goes through the kubectl that scripts/testcluster builds, so the client always
matches the test control plane's version (never the machine's /usr/bin/kubectl).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TESTCLUSTER = ROOT / "scripts" / "testcluster"


def run_testcluster(*args: str) -> str:
    """Run scripts/testcluster; return the last line of its stdout ("" if none)."""
    out = subprocess.run([str(TESTCLUSTER), *args], check=True, text=True,
                         stdout=subprocess.PIPE).stdout
    return (out.strip().splitlines() or [""])[-1]


def poll(condition: Callable[[], Any], timeout: float = 60.0, interval: float = 0.2,
         what: str = "condition") -> Any:
    """Return condition()'s first truthy value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@dataclass
class KubeCluster:
    kubeconfig: Path
    server: str
    ca_file: Path
    kubectl_bin: Path
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kube-")))

    @property
    def env(self) -> dict[str, str]:
        """os.environ with KUBECONFIG pointing at this cluster (for subprocesses)."""
        return dict(os.environ, KUBECONFIG=str(self.kubeconfig))

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                kubeconfig: Path | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run the same-version kubectl; stdout/stderr captured as text."""
        config = kubeconfig or self.kubeconfig
        proc = subprocess.run([str(self.kubectl_bin), f"--kubeconfig={config}", *args],
                              input=input, text=True, capture_output=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stderr}{proc.stdout}")
        return proc

    def close(self) -> None:
        """Remove the private working directory (token kubeconfigs, flattened config)."""
        shutil.rmtree(self.workdir, ignore_errors=True)

    def get_json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def exists(self, *args: str) -> bool:
        proc = self.kubectl("get", *args, "--ignore-not-found", "-o", "name", check=False)
        return proc.returncode == 0 and bool(proc.stdout.strip())

    def wait_crd_established(self, name: str, timeout: float = 60.0) -> None:
        """Poll until CRD `name` is Established. (`kubectl wait --for=condition=...` fails at
        once, not waits, while a just-created CRD has no status.conditions yet.)"""
        def established() -> bool:
            conditions = self.get_json(f"crd/{name}").get("status", {}).get("conditions") or []
            return any(c.get("type") == "Established" and c.get("status") == "True"
                       for c in conditions)
        poll(established, timeout=timeout, what=f"CRD {name} Established")

    def create_namespace(self, prefix: str = "t") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.kubectl("create", "namespace", name)
        self.kubectl("label", "namespace", name, "meshcfg.test/owned=true")
        # Pods can only be created once the serviceaccount controller made "default".
        poll(lambda: self.exists("serviceaccount", "default", "-n", name), timeout=60,
             what=f"ServiceAccount {name}/default")
        return name

    def delete_namespace(self, name: str) -> None:
        # Pods bound to a node only go away when a kubelet confirms: there is none here.
        self.kubectl("delete", "pods", "--all", "-n", name, "--force", "--grace-period=0",
                     "--wait=false", check=False)
        self.kubectl("delete", "namespace", name, "--wait=false", check=False)

    def service_account_token(self, namespace: str, name: str, duration: str = "1h") -> str:
        """A bound token (TokenRequest) for ServiceAccount namespace/name, created if missing."""
        if not self.exists("serviceaccount", name, "-n", namespace):
            self.kubectl("create", "serviceaccount", name, "-n", namespace)
        return self.kubectl("create", "token", name, "-n", namespace,
                            f"--duration={duration}").stdout.strip()

    def kubeconfig_for_token(self, token: str, namespace: str) -> Path:
        """A kubeconfig for this cluster that authenticates with `token` only."""
        path = self.workdir / f"token-{uuid.uuid4().hex[:8]}.kubeconfig"
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "c", "cluster": {
                "server": self.server, "certificate-authority": str(self.ca_file)}}],
            "users": [{"name": "u", "user": {"token": token}}],
            "contexts": [{"name": "c", "context": {
                "cluster": "c", "user": "u", "namespace": namespace}}],
            "current-context": "c",
        }, indent=1))
        return path


def from_env_kubeconfig(kubeconfig_env: str, kubectl_bin: Path) -> KubeCluster:
    """Describe the current context of $KUBECONFIG (may list several files): it is flattened
    into one self-contained kubeconfig so that `--kubeconfig` and `ca_file` work."""
    env = dict(os.environ, KUBECONFIG=kubeconfig_env)
    flat = subprocess.run([str(kubectl_bin), "config", "view", "--minify", "--flatten",
                           "--raw", "-o", "json"],
                          env=env, check=True, text=True, capture_output=True).stdout
    cluster = json.loads(flat)["clusters"][0]["cluster"]
    workdir = Path(tempfile.mkdtemp(prefix="kube-"))
    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(flat)
    ca_file = workdir / "ca.crt"
    ca_file.write_bytes(base64.b64decode(cluster.get("certificate-authority-data", "")))
    return KubeCluster(kubeconfig, cluster["server"], ca_file, kubectl_bin, workdir)


def reachable(kubeconfig_env: str, kubectl_bin: Path) -> bool:
    proc = subprocess.run([str(kubectl_bin), "--request-timeout=5s", "get", "--raw", "/readyz"],
                          env=dict(os.environ, KUBECONFIG=kubeconfig_env),
                          capture_output=True, text=True)
    return proc.returncode == 0


def from_testcluster(kubeconfig: Path, kubectl_bin: Path) -> KubeCluster:
    """Describe the cluster scripts/testcluster started (its kubeconfig names the CA file)."""
    proc = subprocess.run([str(kubectl_bin), f"--kubeconfig={kubeconfig}", "config", "view",
                           "--minify", "-o", "json"],
                          check=True, text=True, capture_output=True)
    cluster = json.loads(proc.stdout)["clusters"][0]["cluster"]
    return KubeCluster(kubeconfig, cluster["server"], Path(cluster["certificate-authority"]),
                       kubectl_bin)
