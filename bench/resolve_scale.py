"""Benchmark: resolution throughput of kubectl meshcfg's resolver vs a naive resolver.

Population: pods across 500 namespaces, 2,000 SidecarProxyConfigs (global, namespace and
workload scope, with conflicts), Istio annotations on over half of the pods, most of them
distinct. The timed path builds the full SPEC section 4 object (fields, sources,
overridden lists, warnings) for every pod.

The naive resolver (tests/naivelib.py, the tests' oracle) scans every config for every pod; its cost per
pod does not depend on the pod count, so it is timed on a sample of the same population
in the same run, and the ratio is of pods per second.

Usage: .venv/bin/python bench/resolve_scale.py [--sizes 1000,10000,50000]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from naivelib import resolve_naive  # noqa: E402

from kubectl_meshcfg.core.model import API_VERSION, KIND, MeshConfig, Origin, Target, parse_config
from kubectl_meshcfg.core.resolve import Resolver

NAMESPACES = 500
CONFIGS = 2000
NAIVE_SAMPLE = 500
APPS = ("web", "api", "worker", "cache", "db", "batch", "gateway", "ml")


def make_configs(rng: random.Random) -> list[Any]:
    docs: list[dict[str, Any]] = []

    def add(namespace: str, name: str, spec: dict[str, Any], minute: int) -> None:
        docs.append({"apiVersion": API_VERSION, "kind": KIND,
                     "metadata": {"name": name, "namespace": namespace,
                                  "creationTimestamp": f"2026-01-01T{minute // 60 % 24:02d}:"
                                                       f"{minute % 60:02d}:00Z"},
                     "spec": spec})

    add("istio-system", "mesh", {"proxy": {"logLevel": "warning"}}, 0)
    add("istio-system", "mesh-old", {"proxy": {"logLevel": "info"}}, 1)     # a GlobalConflict
    for i in range(NAMESPACES):
        cpu = rng.choice(["500m", "1", "2"])
        add(f"ns-{i}", "defaults", {"proxy": {"resources": {"limits": {"cpu": cpu}}},
                                    "lifecycle": {"terminationDrainDuration": "10s"}}, 2 + i)
    while len(docs) < CONFIGS:
        i = len(docs)
        namespace = f"ns-{rng.randrange(NAMESPACES)}"
        labels = {"app": rng.choice(APPS)}
        if rng.random() < 0.5:
            labels["tier"] = rng.choice(["gold", "silver"])
        spec = {"selector": {"matchLabels": labels},
                "proxy": {"concurrency": rng.choice([0, 1, 2, 4]),
                          "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}},
                "traffic": {"excludeInboundPorts": str(rng.randrange(1024, 9000))}}
        add(namespace, f"wl-{i}", spec, 600 + i)
    return [parse_config(doc, Origin("bench", n), "default", n) for n, doc in enumerate(docs)]


def make_pods(rng: random.Random, count: int) -> list[Target]:
    pods = []
    for i in range(count):
        labels = {"app": rng.choice(APPS), "pod-template-hash": f"h{i % 97}"}
        if rng.random() < 0.5:
            labels["tier"] = rng.choice(["gold", "silver"])
        annotations: dict[str, str] = {}
        if rng.random() < 0.6:
            annotations["sidecar.istio.io/proxyCPU"] = f"{rng.randrange(50, 2000)}m"
            annotations["traffic.sidecar.istio.io/excludeOutboundPorts"] = str(rng.randrange(1, 65535))
        if rng.random() < 0.2:
            annotations["proxy.istio.io/config"] = f"concurrency: {rng.randrange(1, 4)}"
        if rng.random() < 0.02:
            annotations["sidecar.istio.io/logLevel"] = "loud"          # an InvalidAnnotation
        pods.append(Target("Pod", f"ns-{rng.randrange(NAMESPACES)}", f"pod-{i}", labels,
                           annotations, grace_period=rng.choice([None, 5, 30, 60])))
    return pods


def distinct_inputs(pods: list[Target]) -> int:
    return len({(p.namespace, tuple(sorted(p.labels.items())),
                 tuple(sorted(p.annotations.items())), p.grace_period) for p in pods})


def best_of(runs: int, func: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def run(sizes: list[int]) -> list[dict[str, Any]]:
    rng = random.Random(7)
    configs = make_configs(rng)
    mesh = MeshConfig("istio-system", "istio", "istio-system", {"concurrency": 2})
    results = []
    for size in sizes:
        pods = make_pods(random.Random(size), size)

        def fast(pods: list[Target] = pods) -> list[dict[str, Any]]:
            return Resolver(configs, mesh).resolve_all(pods)

        sample = pods[:NAIVE_SAMPLE]
        fast_out = fast()
        assert fast_out[:len(sample)] == [resolve_naive(configs, mesh, p) for p in sample]
        fast_seconds = best_of(3 if size <= 10000 else 1, fast)
        naive_seconds = best_of(1, lambda s=sample: [resolve_naive(configs, mesh, p) for p in s])
        start = time.perf_counter()
        json.dumps({"kind": "List", "items": fast_out})
        dump_seconds = time.perf_counter() - start
        fast_rate, naive_rate = size / fast_seconds, len(sample) / naive_seconds
        results.append({"pods": size, "distinct_inputs": distinct_inputs(pods),
                        "warnings": sum(len(r["warnings"]) for r in fast_out),
                        "seconds": round(fast_seconds, 3), "pods_per_s": round(fast_rate),
                        "naive_pods_per_s": round(naive_rate),
                        "speedup_vs_naive": round(fast_rate / naive_rate, 1),
                        "json_dump_seconds": round(dump_seconds, 3)})
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = run(sizes)
    header = f"{'pods':>7} {'distinct':>9} {'seconds':>8} {'pods/s':>9} {'naive pods/s':>13} " \
             f"{'speedup':>8} {'per-pod µs':>11}"
    print(f"{NAMESPACES} namespaces, {CONFIGS} SidecarProxyConfigs, naive sampled on "
          f"{NAIVE_SAMPLE} pods of each population")
    print(header)
    for r in results:
        print(f"{r['pods']:>7} {r['distinct_inputs']:>9} {r['seconds']:>8} {r['pods_per_s']:>9} "
              f"{r['naive_pods_per_s']:>13} {r['speedup_vs_naive']:>7}x "
              f"{1e6 / r['pods_per_s']:>11.1f}")
    if len(results) > 1:
        first, last = results[0], results[-1]
        growth = (last["seconds"] / first["seconds"]) / (last["pods"] / first["pods"])
        print(f"time growth relative to linear from {first['pods']} to {last['pods']} pods: "
              f"{growth:.2f} (1.00 = linear)")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
