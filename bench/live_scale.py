"""Benchmark: `kubectl meshcfg explain -A -o json` against a real API server at scale.

Loads 10,000 pods (no owners) in 500 namespaces and 2,000 SidecarProxyConfigs (1 global,
499 namespace-scope, 1,500 workload-scope with overlapping selectors, so conflicts too)
into the test cluster (scripts/testcluster, or the cluster $KUBECONFIG points to), then
times, in the same run and alternating:

* `kubectl meshcfg explain -A -o json` end to end (a subprocess, output to a file), and
* `kubectl get pods -A -o json` with the cluster's same-version kubectl (the baseline),

and reports the medians, their ratio (target: within 2x) and the API requests meshcfg made
(MESHCFG_TRACE_API=1), broken down by resource: they grow with the object count only by
pagination (pages of 500, as kubectl's).

Loading is idempotent: objects that exist are kept (a cluster-wide list finds them), only
missing ones are created with concurrent raw POSTs, so reruns start timing at once.

Usage: .venv/bin/python bench/live_scale.py [--runs 3] [--pods 10000] [--namespaces 500]
       [--configs 2000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kubectl_meshcfg.kube import resources, transport  # noqa: E402
from kubectl_meshcfg.kube.kubeconfig import load_access  # noqa: E402

LABEL = "meshcfg.bench/live-scale"
APPS = ("web", "api", "worker", "cache", "db")
TIERS = ("gold", "silver")
CRD_DIR = ROOT / "manifests" / "crds"


def sh(*args: str, **kwargs: Any) -> str:
    return subprocess.run(args, check=True, text=True, stdout=subprocess.PIPE,
                          **kwargs).stdout


def cluster() -> tuple[str, str]:
    """(kubeconfig path, same-version kubectl path)."""
    testcluster = ROOT / "scripts" / "testcluster"
    kubectl = sh(str(testcluster), "bin", "kubectl").strip().splitlines()[-1]
    env_config = os.environ.get("KUBECONFIG")
    if env_config and subprocess.run([kubectl, "get", "--raw", "/readyz"],
                                     capture_output=True).returncode == 0:
        return env_config, kubectl
    print("bench: using scripts/testcluster (left running for quick reruns; stop it with "
          "scripts/testcluster down)", file=sys.stderr)
    return sh(str(testcluster), "up").strip().splitlines()[-1], kubectl


# ---- the population ---------------------------------------------------------------------------

def namespace_names(count: int) -> list[str]:
    return [f"bench-{i:03d}" for i in range(count)]


def pod_doc(namespace: str, index: int) -> dict[str, Any]:
    labels = {"app": APPS[index % len(APPS)], "tier": TIERS[index // len(APPS) % 2],
              LABEL: "true"}
    annotations: dict[str, str] = {}
    if index % 4 == 0:
        annotations["sidecar.istio.io/proxyCPU"] = f"{100 + index * 10}m"
    if index % 7 == 0:
        annotations["proxy.istio.io/config"] = "concurrency: 1\n"
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"pod-{index:03d}", "namespace": namespace, "labels": labels,
                         "annotations": annotations},
            "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}],
                     "automountServiceAccountToken": False,
                     "terminationGracePeriodSeconds": 30 if index % 3 else 10}}


def config_docs(namespaces: list[str], total: int, root: str) -> list[dict[str, Any]]:
    def doc(namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": "meshcfg.io/v1alpha1", "kind": "SidecarProxyConfig",
                "metadata": {"name": name, "namespace": namespace, "labels": {LABEL: "true"}},
                "spec": spec}

    docs = [doc(root, "bench-global", {"proxy": {"logLevel": "info"},
                                       "lifecycle": {"terminationDrainDuration": "10s"}})]
    for i, ns in enumerate(namespaces[1:], start=1):
        docs.append(doc(ns, "defaults", {"proxy": {"resources": {"limits": {
            "cpu": ("500m", "1", "2")[i % 3]}}}}))
    i = 0
    while len(docs) < total:
        ns = namespaces[i % len(namespaces)]
        slot = i // len(namespaces)
        labels = {"app": APPS[(i + slot) % len(APPS)]}
        if slot % 2:
            labels["tier"] = TIERS[i % 2]
        docs.append(doc(ns, f"workload-{slot}", {
            "selector": {"matchLabels": labels},
            "proxy": {"concurrency": (0, 1, 2, 4)[i % 4]},
            "traffic": {"excludeInboundPorts": str(8000 + i % 1000)}}))
        i += 1
    return docs


# ---- loading ----------------------------------------------------------------------------------

def post(api: transport.Api, resource: resources.Resource, namespace: str | None,
         doc: dict[str, Any]) -> None:
    call = resources.Call("create", resource, namespace, doc["metadata"]["name"])
    try:
        api.request("POST", call, resource.path(namespace), body=json.dumps(doc).encode(),
                    content_type="application/json")
    except transport.ApiError as error:
        if "409" not in str(error) and "already exists" not in str(error).lower() \
                and "conflict" not in str(error):
            raise


def existing(api: transport.Api, resource: resources.Resource) -> set[tuple[str, str]]:
    items = api.list(resource, None, label_selector=f"{LABEL}=true")
    return {(i["metadata"].get("namespace", ""), i["metadata"]["name"]) for i in items}


def load(kubeconfig: str, kubectl: str, pods: int, namespace_count: int,
         configs: int) -> float:
    started = time.monotonic()
    env = dict(os.environ, KUBECONFIG=kubeconfig)
    subprocess.run([kubectl, "apply", "--server-side", "--force-conflicts", "-f", str(CRD_DIR)],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run([kubectl, "wait", "--for=condition=Established", "--timeout=60s",
                    "crd/sidecarproxyconfigs.meshcfg.io"], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    api = transport.Api(load_access(kubeconfig, None), connections=32)
    namespaces = namespace_names(namespace_count)
    ns_res = resources.Resource("Namespace", "", "v1", "namespaces")
    sa_res = resources.Resource("ServiceAccount", "", "v1", "serviceaccounts")
    pod_res = resources.TARGET_RESOURCES["Pod"]
    have_ns = {name for _, name in existing(api, ns_res)}
    with ThreadPoolExecutor(32) as pool:
        todo = [n for n in [*namespaces, "istio-system"] if n not in have_ns]
        list(pool.map(lambda n: post(api, ns_res, None, {
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": n, "labels": {LABEL: "true"}}}), todo))
        # Pods need the namespace's default ServiceAccount; do not wait for the controller.
        have_sa = {ns for ns, name in existing(api, sa_res)}
        list(pool.map(lambda n: post(api, sa_res, n, {
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "default", "labels": {LABEL: "true"}}}),
            [n for n in namespaces if n not in have_sa]))
        have_pods = existing(api, pod_res)
        per_ns = math.ceil(pods / namespace_count)
        wanted = [pod_doc(ns, i) for ns in namespaces for i in range(per_ns)][:pods]
        list(pool.map(lambda d: post(api, pod_res, d["metadata"]["namespace"], d),
                      [d for d in wanted if (d["metadata"]["namespace"],
                                             d["metadata"]["name"]) not in have_pods]))
        have_cfg = existing(api, resources.SIDECAR_CONFIGS)
        docs = config_docs(namespaces, configs, "istio-system")
        list(pool.map(lambda d: post(api, resources.SIDECAR_CONFIGS, d["metadata"]["namespace"], d),
                      [d for d in docs if (d["metadata"]["namespace"],
                                           d["metadata"]["name"]) not in have_cfg]))
    return time.monotonic() - started


# ---- timing -----------------------------------------------------------------------------------

def timed(cmd: list[str], env: dict[str, str], out: Path) -> float:
    with out.open("wb") as handle:
        started = time.monotonic()
        proc = subprocess.run(cmd, env=env, stdout=handle, stderr=subprocess.PIPE)
        elapsed = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.decode()}")
    return elapsed


def request_count(meshcfg: list[str], env: dict[str, str]) -> tuple[int, Counter[str]]:
    proc = subprocess.run(meshcfg, env=dict(env, MESHCFG_TRACE_API="1"),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          check=True)
    total = int(re.findall(r"meshcfg: (\d+) API requests", proc.stderr)[-1])
    per: Counter[str] = Counter()
    for line in proc.stderr.splitlines():
        match = re.match(r"I0000 GET https?://[^/]+(/[^?\s]*)", line)
        if match:
            per[match[1]] += 1
    return total, per


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pods", type=int, default=10000)
    parser.add_argument("--namespaces", type=int, default=500)
    parser.add_argument("--configs", type=int, default=2000)
    args = parser.parse_args()

    kubeconfig, kubectl = cluster()
    load_seconds = load(kubeconfig, kubectl, args.pods, args.namespaces, args.configs)
    env = dict(os.environ, KUBECONFIG=kubeconfig)
    env.pop("MESHCFG_TRACE_API", None)
    meshcfg = [str(ROOT / ".venv" / "bin" / "kubectl-meshcfg"), "explain", "-A", "-o", "json"]
    baseline = [kubectl, "get", "pods", "-A", "-o", "json"]
    workdir = Path(tempfile.mkdtemp(prefix="meshcfg-bench-"))
    ours, theirs = [], []
    timed(meshcfg, env, workdir / "warmup.json")     # page cache, .pyc files
    for _ in range(args.runs):
        theirs.append(timed(baseline, env, workdir / "kubectl.json"))
        ours.append(timed(meshcfg, env, workdir / "meshcfg.json"))
    result = json.loads((workdir / "meshcfg.json").read_text())
    pods_seen = json.loads((workdir / "kubectl.json").read_text())["items"]
    bench_pods = sum(1 for p in pods_seen if (p["metadata"].get("labels") or {}).get(LABEL))
    requests, per_path = request_count(meshcfg, env)
    api = transport.Api(load_access(kubeconfig, None))
    configs_total = len(api.list(resources.SIDECAR_CONFIGS, None))
    namespaces_total = len(api.list(resources.NAMESPACES, None))
    page = transport.DEFAULT_PAGE_SIZE
    pages = math.ceil(len(pods_seen) / page) + math.ceil(configs_total / page)
    namespace_pages = math.ceil(namespaces_total / page)
    # the mesh and injector ConfigMaps, one page at least per workload kind, then pods and
    # configs pages, and the namespaces' labels (the revision of pods not injected yet)
    expected = 2 + (len(resources.TARGET_RESOURCES) - 1) + pages + namespace_pages

    ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)
    print(f"cluster: {len(pods_seen)} pods ({bench_pods} from the benchmark), "
          f"explain targets: {len(result['items'])}; loading took {load_seconds:.1f}s")
    print(f"{'command':48} {'median s':>9}  runs")
    print(f"{'kubectl get pods -A -o json':48} {theirs_s:9.2f}  "
          + " ".join(f"{t:.2f}" for t in theirs))
    print(f"{'kubectl meshcfg explain -A -o json':48} {ours_s:9.2f}  "
          + " ".join(f"{t:.2f}" for t in ours))
    print(f"ratio meshcfg / kubectl: {ours_s / theirs_s:.2f}x (target: <= 2x)")
    print(f"output sizes: meshcfg {(workdir / 'meshcfg.json').stat().st_size / 1e6:.1f} MB, "
          f"kubectl {(workdir / 'kubectl.json').stat().st_size / 1e6:.1f} MB")
    print(f"meshcfg API requests: {requests} (expected: 2 ConfigMaps + 6 workload lists "
          f"+ {pages} pages of {transport.DEFAULT_PAGE_SIZE} pods/configs + {namespace_pages} "
          f"of namespaces = {expected})")
    for path, count in sorted(per_path.items()):
        print(f"  {count:4d}  GET {path}")


if __name__ == "__main__":
    main()
