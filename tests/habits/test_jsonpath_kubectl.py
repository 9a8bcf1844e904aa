"""-o jsonpath=... and -o custom-columns=... print what the real kubectl prints for the
same objects (the test cluster's kubectl against the test API server)."""

from __future__ import annotations

import pytest
from cluster.livelib import Meshcfg, Run, kubectl_apply, spc
from clusterlib import KubeCluster

from kubectl_meshcfg.core import jsonpath

pytestmark = pytest.mark.cluster

TEMPLATES = [
    "{.items[*].metadata.name}",
    '{range .items[*]}{.metadata.name}{"\\t"}{.spec.proxy.concurrency}{"\\n"}{end}',
    "{.items[0].spec}",
    "{.items[-1].metadata.labels}",
    "{.items[1:3].metadata.name}",
    "{.items[*].spec.selector.matchLabels.app}",
    '{.items[?(@.spec.proxy.concurrency==4)].metadata.name}',
    "{.items[*].metadata.labels.team\\.io/owner}",
    "{.items[*].metadata.labels['team.io/owner']}",      # kubectl: a.b even in quotes
    "{.items[*].metadata.labels['team\\.io/owner']}",
    "{..concurrency}",
    "{.kind} {.items[*].kind}",
    "{.items[*].spec.nothing}",
    "name: {.items[0].metadata.name}, missing: {.items[0].metadata.nope}.",
]
COLUMNS = [
    "NAME:.metadata.name,CONCURRENCY:.spec.proxy.concurrency",
    "NAME:{.metadata.name},SELECTOR:.spec.selector.matchLabels,LABELS:.metadata.labels",
    "N:.metadata.name,PROXY:.spec.proxy,X:.spec.nothing",
]


@pytest.fixture
def configs(kube_cluster: KubeCluster, test_namespace: str) -> str:
    kubectl_apply(kube_cluster,
                  spc("alpha", test_namespace, {"proxy": {"concurrency": 2}},
                      labels={"team.io/owner": "a"}),
                  spc("beta", test_namespace, {"selector": {"matchLabels": {"app": "web"}},
                                               "proxy": {"concurrency": 4}}),
                  spc("gamma", test_namespace, {"selector": {"matchLabels": {"app": "api", "tier": "x"}},
                                                "proxy": {"concurrency": 4, "logLevel": "debug"}},
                      labels={"team.io/owner": "c", "env": "dev"}))
    return test_namespace


def kubectl_out(cluster: KubeCluster, namespace: str, fmt: str) -> str:
    return cluster.kubectl("get", "sidecarproxyconfigs.meshcfg.io", "-n", namespace, "-o", fmt).stdout


def prints_as_kubectl(meshcfg: Meshcfg, cluster: KubeCluster, namespace: str, fmt: str) -> Run:
    """`get spc -o FMT` succeeds and prints what kubectl prints."""
    ours = meshcfg("get", "spc", "-n", namespace, "-o", fmt)
    assert ours.code == 0, ours.err
    assert ours.out == kubectl_out(cluster, namespace, fmt)
    return ours


@pytest.mark.parametrize("template", TEMPLATES)
def test_jsonpath_as_kubectl(meshcfg: Meshcfg, kube_cluster: KubeCluster, configs: str,
                             template: str) -> None:
    prints_as_kubectl(meshcfg, kube_cluster, configs, f"jsonpath={template}")


@pytest.mark.parametrize("spec", COLUMNS)
def test_custom_columns_as_kubectl(meshcfg: Meshcfg, kube_cluster: KubeCluster, configs: str,
                                   spec: str) -> None:
    ours = prints_as_kubectl(meshcfg, kube_cluster, configs, f"custom-columns={spec}")
    bare = meshcfg("get", "spc", "-n", configs, "-o", f"custom-columns={spec}", "--no-headers")
    assert bare.out == ours.out.split("\n", 1)[1]


def test_one_named_object_is_the_template_root(meshcfg: Meshcfg, kube_cluster: KubeCluster,
                                               configs: str) -> None:
    ours = meshcfg("get", "spc", "beta", "-n", configs, "-o", "jsonpath={.metadata.name}")
    theirs = kube_cluster.kubectl("get", "sidecarproxyconfigs.meshcfg.io", "beta", "-n", configs,
                                  "-o", "jsonpath={.metadata.name}").stdout
    assert ours.out == theirs == "beta"


@pytest.mark.parametrize("bad", ["{.items[}", "{range .items[*]}{.x}", "{end}"])
def test_bad_templates_are_one_line_errors(bad: str) -> None:
    with pytest.raises(jsonpath.TemplateError):
        jsonpath.parse(bad)
