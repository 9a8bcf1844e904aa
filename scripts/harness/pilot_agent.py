"""Istio's real pilot-agent as the proxy container's PID 1, with the Envoy stand-in
(``envoy.py``) as its Envoy binary.

pilot-agent is built from the pinned istio.io/istio module by ``scripts/pilot-agent``.
It runs ``pilot-agent proxy sidecar`` as in the injected container, from a working
directory laid out as the proxyv2 image is: ``var/lib/istio/envoy/envoy_bootstrap_tmpl.json``
(Istio's bootstrap template at the pinned version, from the Go module cache) and
``var/run/secrets/istio/root-cert.pem`` (a throwaway CA certificate: pilot-agent needs
one to start its SDS server; there is no istiod, so no certificate is ever issued and
xDS never connects, which the harness does not need). It writes the bootstrap into
``etc/`` and starts ``PROXY_CONFIG``'s ``binaryPath``, the stand-in, with real Envoy's
command line. What is real: its SIGTERM handling (drain_listeners, then
terminationDrainDuration or, with EXIT_ON_ZERO_ACTIVE_CONNECTIONS, the minimum drain and
its active-connection polls), its status port closing on SIGTERM, ``/drain`` for native
sidecars, the bootstrap's stats matcher, and killing Envoy at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
STATUS_PORT = 15020


def binary() -> str:
    """The built pilot-agent (built first when missing: minutes, once per version)."""
    out = subprocess.run([str(ROOT / "scripts/pilot-agent"), "--print-path"], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def bootstrap_template() -> Path:
    version = subprocess.run([str(ROOT / "scripts/pilot-agent"), "--print-version"],
                             check=True, capture_output=True, text=True).stdout.strip()
    modcache = subprocess.run(["go", "env", "GOMODCACHE"], check=True, capture_output=True,
                              text=True).stdout.strip()
    path = Path(modcache) / f"istio.io/istio@{version}/tools/packaging/common/envoy_bootstrap.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: run scripts/pilot-agent --print-path first")
    return path


def prepare(workdir: Path, envoy_program: str, uid: int | None = None,
            envoy_script: str | None = None) -> None:
    """Lays out pilot-agent's working directory; ``envoy`` there runs the stand-in as
    ``envoy_program`` (an executable whose name is ``envoy``) with Envoy's arguments;
    ``envoy_script`` is where envoy.py is as that program sees it (a pod's mount)."""
    (workdir / "var/run/secrets/istio").mkdir(parents=True, exist_ok=True)
    (workdir / "var/lib/istio/envoy").mkdir(parents=True, exist_ok=True)
    (workdir / "etc").mkdir(exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=meshcfg-harness-root", "-keyout", "/dev/null",
                    "-out", str(workdir / "var/run/secrets/istio/root-cert.pem")],
                   check=True, capture_output=True)
    shutil.copyfile(bootstrap_template(), workdir / "var/lib/istio/envoy/envoy_bootstrap_tmpl.json")
    wrapper = workdir / "envoy"
    script = envoy_script or str(HERE / "envoy.py")
    wrapper.write_text(f'#!/bin/sh\nexec {envoy_program} {script} "$@"\n')
    wrapper.chmod(0o755)
    if uid is not None:
        for path in [workdir, *workdir.rglob("*")]:
            os.chown(path, uid, uid)


def proxy_config(workdir: Path, drain_seconds: float, concurrency: int = 2,
                 stats_matcher: dict[str, Any] | None = None) -> dict[str, Any]:
    pc: dict[str, Any] = {
        "binaryPath": str(workdir / "envoy"),
        "configPath": str(workdir / "etc"),
        "discoveryAddress": "127.0.0.1:1",  # no istiod: xDS never connects
        "terminationDrainDuration": f"{drain_seconds:g}s",
        "statusPort": STATUS_PORT,
        "concurrency": concurrency,
    }
    if stats_matcher is not None:
        pc["proxyStatsMatcher"] = stats_matcher
    return pc


def command_env(workdir: Path, pc: dict[str, Any], exit_on_zero: bool = False,
                extra: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    env = {"PROXY_CONFIG": json.dumps(pc), "POD_NAME": "web-0", "POD_NAMESPACE": "default",
           "INSTANCE_IP": "10.1.2.3", "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "HOME": str(workdir)}
    if exit_on_zero:
        env["EXIT_ON_ZERO_ACTIVE_CONNECTIONS"] = "true"
    env.update(extra or {})
    return [binary(), "proxy", "sidecar"], env
