"""explain against Istio's OWN ProxyConfig code, on generated inputs (hypothesis).

`istioctl kube-inject` ignores ProxyConfig objects offline, so this uses
`scripts/istio-tool proxyconfig-oracle`: a Go program built from the pinned istio.io/istio
module that calls Istio's functions themselves (an oracle of Istio's code, not a
stand-in): `model.GetProxyConfigs` + `EffectiveProxyConfig` (what the injector freezes
into PROXY_CONFIG and the proxy's environment) and pilot-agent's
`config.ConstructProxyConfig` (what Envoy runs, with the pod's annotations in a private
downward-API file). docs/precedence.md explains the order this checks.

For every generated pod (SidecarProxyConfigs at every layer, Istio ProxyConfigs at every
scope, user annotations, a mesh config, a precedence mode) meshcfg renders the pod; the
rendered pod goes through the oracle, and:
(a) explain's concurrency is the one pilot-agent runs;
(b) explain's proxyMetadata and dnsCapture are what injection put into the environment;
(c) explain warns ProxyConfigOverriddenAtRuntime exactly where PROXY_CONFIG and the run-time
    concurrency differ.
Leaves render said it cannot deliver (a user's own annotation carries them) are skipped,
as in test_round_trip.py. All pods of one example share one oracle call (50 a call,
3 examples: 150 pods).
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scenariolib import proxy_config_sets, scenarios

from kubectl_meshcfg.core import fields, formats
from kubectl_meshcfg.core import proxyconfigs as pcs
from kubectl_meshcfg.core.model import MeshConfig
from kubectl_meshcfg.core.resolve import Resolver

from .test_round_trip import USER_ANNOTATIONS, pod_doc, rendered

pytestmark = pytest.mark.istio

ROOT = Path(__file__).resolve().parents[2]
PODS_PER_CALL = 50
MESHES: list[dict[str, Any]] = [
    {},
    {"concurrency": 3, "proxyMetadata": {"A": "mesh", "ISTIO_META_DNS_CAPTURE": "true"}},
]
GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")     # strconv.ParseBool, as the proxy reads it


class Oracle:
    def __init__(self, binary: Path, workdir: Path):
        self.binary, self.workdir = binary, workdir

    def run(self, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = self.workdir / "out.json"
        subprocess.run([str(self.binary), str(out)], input=json.dumps({"cases": cases}),
                       text=True, check=True, capture_output=True, timeout=300)
        results: list[dict[str, Any]] = json.loads(out.read_text())["results"]
        return results


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Oracle:
    path = subprocess.run([str(ROOT / "scripts" / "istio-tool"), "proxyconfig-oracle",
                           "--print-path"], check=True, text=True,
                          stdout=subprocess.PIPE).stdout.strip()
    return Oracle(Path(path), tmp_path_factory.mktemp("proxyconfig-oracle"))


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[Any], list[Any], dict[str, str], Any, str | None]:
    configs, target = draw(scenarios())
    precedence = draw(st.sampled_from([None, "annotation-first", "workload-first"]))
    users = draw(USER_ANNOTATIONS | st.just({"proxy.istio.io/config": "concurrency: 2"}))
    return configs, draw(proxy_config_sets()), users, target, precedence


def istio_input(config: pcs.IstioProxyConfig) -> dict[str, Any]:
    """The object as istiod sees it. Offline documents without a creationTimestamp count as
    created after every other, in load order (SPEC): give them such timestamps."""
    created = config.created or f"2026-12-01T00:{config.load_order // 60:02d}:" \
                                 f"{config.load_order % 60:02d}Z"
    return {"namespace": config.namespace, "name": config.name, "created": created,
            "spec": config.raw.get("spec") or {}}


def cpu_limit(effective: dict[str, Any]) -> int:
    """ISTIO_CPU_LIMIT: the template's resourceFieldRef on limits.cpu, divisor 1 (kubelet
    rounds up)."""
    cores = formats.parse_quantity(str(effective["fields"]["proxy.resources.limits.cpu"]["value"]))
    return math.ceil(cores) if cores else 0


@settings(max_examples=3, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(st.sampled_from(range(len(MESHES))),
       st.lists(cases(), min_size=PODS_PER_CALL, max_size=PODS_PER_CALL))
def test_explain_is_what_istios_own_functions_run(oracle: Oracle, mesh_index: int,
                                                  batch: list[Any]) -> None:
    mesh = MeshConfig("istio-system", "istio", "istio-system", MESHES[mesh_index])
    inputs, expected = [], []
    for index, (configs, proxy_configs, users, target, precedence) in enumerate(batch):
        resolver = Resolver(configs, mesh, precedence=precedence, proxy_configs=proxy_configs)
        done = rendered(resolver, pod_doc(index, target, users), index)
        if done is None:
            continue
        effective, result, merged = done
        inputs.append({"mesh": yaml.safe_dump({"defaultConfig": MESHES[mesh_index]}),
                       "cpuLimit": cpu_limit(dict(effective)),
                       "proxyConfigs": [istio_input(c) for c in proxy_configs],
                       "pod": {"namespace": target.namespace, "labels": dict(target.labels),
                               "annotations": merged["metadata"]["annotations"]}})
        expected.append((dict(effective), {note.split(" ", 1)[0] for note in result.notes}))
    results = oracle.run(inputs)
    assert len(results) == len(inputs)
    for index, (found, (effective, undeliverable)) in enumerate(zip(results, expected,
                                                                   strict=True)):
        where = (index, inputs[index])
        assert not found.get("error"), where
        check_case(effective, undeliverable, found["injected"], found["runtime"], where)


def check_case(effective: dict[str, Any], undeliverable: set[str], injected: dict[str, Any],
               runtime: dict[str, Any], where: Any) -> None:
    values = {path: field["value"] for path, field in effective["fields"].items()}
    codes = [w["code"] for w in effective["warnings"]]
    if not undeliverable & {"proxy.concurrency", "proxy.resources.limits.cpu"}:
        assert values["proxy.concurrency"] == runtime.get("concurrency", 0), where       # (a)
        disagree = "concurrency" in injected and injected["concurrency"] != runtime.get(
            "concurrency", 0)
        assert ("ProxyConfigOverriddenAtRuntime" in codes) == disagree, where           # (c)
    environment = dict(injected.get("proxyMetadata") or {})
    dns = environment.pop(fields.DNS_CAPTURE_KEY, None)
    if "proxy.dnsCapture" not in undeliverable:
        assert values["proxy.dnsCapture"] == (dns in GO_TRUE), where                     # (b)
    ours = {path[len(fields.METADATA_PREFIX):]: value for path, value in values.items()
            if path.startswith(fields.METADATA_PREFIX) and path not in undeliverable}
    theirs = {key: value for key, value in environment.items()
              if fields.METADATA_PREFIX + key not in undeliverable}
    assert ours == theirs, where                                                          # (b)
