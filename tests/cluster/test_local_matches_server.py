"""`--local` validates as the real API server does for what meshcfg's apply sends.

Every case goes twice through the same bytes: the `--local` loader (a file on disk) and a
server-side apply dry run of exactly the body `apply` sends (kube.writes.server_side_apply,
skipping apply's own local check). Verdicts must agree case by case; every local rejection
is one line per problem naming file, document, object and field. Then: a rejection only the
server makes (an admission policy) is reported by `apply` with the file and document.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from clusterlib import KubeCluster, poll
from corpuslib import place, value_groups

from kubectl_meshcfg.app import loader
from kubectl_meshcfg.core.errors import InvalidInput
from kubectl_meshcfg.kube import errors, writes
from kubectl_meshcfg.kube.kubeconfig import load_access
from kubectl_meshcfg.kube.transport import Api

from .livelib import Meshcfg, spc, write

pytestmark = pytest.mark.cluster

BASE: dict[str, Any] = {"apiVersion": "meshcfg.io/v1alpha1", "kind": "SidecarProxyConfig",
                        "metadata": {"name": "x"}, "spec": {"proxy": {"concurrency": 2}}}

# (path, value): nulls at every depth, and ObjectMeta values of the wrong type or shape (a
# stream of these makes kubectl's own decoding fail, so the corpus test cannot hold them)
CASES: list[tuple[str, Any]] = [
    ("spec", None), ("spec.proxy", None), ("spec.proxy.concurrency", None),
    ("spec.proxy.resources", {"limits": None}), ("spec.proxy.resources.limits.cpu", None),
    ("spec.selector", None), ("spec.selector", {"matchLabels": {"a": None}}),
    ("spec.proxy.proxyMetadata", {"K": None}), ("spec.proxy.proxyStatsMatcher",
                                                 {"inclusionPrefixes": None}),
    ("spec.lifecycle", {"postStart": {"exec": None}}),
    ("spec.lifecycle", {"preStop": None, "drainAgent": {"enabled": True}}),
    ("spec.proxy.privateKeyProvider", {"cryptomb": {"pollDelay": None}}),
    ("spec.proxy.concurrency", "3"), ("spec.proxy.concurrency", 3.0),
    ("spec.lifecycle.holdApplicationUntilProxyStarts", "true"),
    ("metadata.labels", None), ("metadata.labels", {"a": None}), ("metadata.labels", {"a": 1}),
    ("metadata.labels", "x"), ("metadata.labels", ["a"]), ("metadata.labels", {}),
    ("metadata.annotations", None), ("metadata.annotations", {"a": None}),
    ("metadata.annotations", {"a": True}), ("metadata.annotations", {"a": {"b": "c"}}),
    ("metadata.annotations", {"a": "x" * (256 * 1024 - 1)}),
    ("metadata.annotations", {"a": "x" * (256 * 1024)}),
    ("metadata.finalizers", "x"), ("metadata.finalizers", [1]), ("metadata.finalizers", [None]),
    ("metadata.finalizers", None), ("metadata.finalizers", ["example.com/f"]),
    ("metadata.ownerReferences", {}), ("metadata.ownerReferences", [{}]),
    ("metadata.ownerReferences", None),
    ("metadata.ownerReferences", [{"apiVersion": "v1", "kind": "ConfigMap", "name": "c",
                                   "uid": "5f1c"}]),
    ("metadata.ownerReferences", [{"apiVersion": "v1", "kind": "ConfigMap", "name": "c",
                                   "uid": "5f1c", "controller": "yes"}]),
    ("metadata.ownerReferences", [{"apiVersion": "apps/", "kind": "A", "name": "c",
                                   "uid": "1"}]),
    ("metadata.ownerReferences", [{"apiVersion": "v1", "kind": "A", "name": n, "uid": n,
                                   "controller": True} for n in ("a", "b")]),
    ("metadata.generateName", 3), ("metadata.generateName", "x-"),
    ("metadata.namespace", None),
    # set by the server: apply leaves them out of what it sends
    ("metadata.uid", 5), ("metadata.generation", "a"), ("metadata.resourceVersion", 5),
    ("metadata.managedFields", None),
]


def documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path, value in CASES:
        doc = place(copy.deepcopy(BASE), path, value) if "." in path else {**BASE, path: value}
        found.append((f"{path}={json.dumps(value)[:40]}", doc))
    for group in value_groups():     # the whole corpus too, as apply would send it (the URL
        # names the kind and object, so cases about them are kubectl's, not the server's)
        if not group.names_object and group.paths[0] not in ("apiVersion", "kind"):
            found.append((group.id, group.document))
    return found


def local_problems(tmp_path: Path, doc: dict[str, Any], namespace: str) -> list[Any]:
    path = tmp_path / "case.json"
    path.write_text(json.dumps(doc))
    try:
        # the namespace is the mesh root: hooks are trusted there (trust is tested apart)
        loader.load_inventory([str(path)], False, namespace, "istio-system", namespace)
    except InvalidInput as invalid:
        for loc, reason in invalid.problems:
            assert (loc.file, loc.document) == (str(path), 1)
            assert loc.obj and loc.obj.startswith("SidecarProxyConfig ") and loc.field
            assert reason and "\n" not in reason
        return invalid.problems
    return []


def test_local_and_server_side_apply_agree_on_each_case(kube_cluster: KubeCluster, crd: None,
                                                        test_namespace: str,
                                                        tmp_path: Path) -> None:
    api = Api(load_access(str(kube_cluster.kubeconfig), None))
    disagree, verdicts = [], set()
    for i, (case, doc) in enumerate(documents()):
        doc = copy.deepcopy(doc)
        doc["metadata"]["name"] = name = f"v-{i:04d}"
        local = not local_problems(tmp_path, doc, test_namespace)
        try:
            writes.server_side_apply(api, doc, test_namespace, name, "kubectl-meshcfg",
                                     force=False, dry_run=True)
            server, why = True, ""
        except errors.ApiError as error:
            assert type(error) in (errors.Invalid, errors.ApiError), error
            server, why = False, str(error)
        verdicts.add(local)
        if local != server:
            disagree.append((case, "local", local, "server", server, why[:200]))
    assert not disagree, disagree
    assert verdicts == {True, False}


DENY_POLICY = """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: {name}}}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: [meshcfg.io]
      apiVersions: ["*"]
      operations: [CREATE, UPDATE]
      resources: [sidecarproxyconfigs]
  validations:
  - expression: >-
      !has(object.spec.proxy) || !has(object.spec.proxy.concurrency) ||
      object.spec.proxy.concurrency != 7
    message: site policy forbids concurrency 7
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: {name}}}
spec:
  policyName: {name}
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels: {{kubernetes.io/metadata.name: {namespace}}}
"""


def test_a_server_only_rejection_names_file_and_document(
        meshcfg: Meshcfg, kube_cluster: KubeCluster, test_namespace: str,
        tmp_path: Path) -> None:
    policy = DENY_POLICY.format(name=f"deny-{test_namespace}", namespace=test_namespace)
    kube_cluster.kubectl("apply", "-f", "-", input=policy)
    try:
        good = write(tmp_path / "1-good.yaml", spc("good", test_namespace))
        bad = write(tmp_path / "2-bad.yaml", spc("fine", test_namespace),
                    spc("seven", test_namespace, {"proxy": {"concurrency": 7}}))
        probe = meshcfg("apply", "-f", str(bad), "--dry-run=client")
        assert probe.code == 0, probe.err     # nothing local objects to it

        def denied() -> bool:
            return meshcfg("apply", "-f", str(bad), "--dry-run=server").code == 1
        poll(denied, timeout=60, what="the ValidatingAdmissionPolicy to take effect")

        run = meshcfg("apply", "-f", str(good), "-f", str(bad))
        assert run.code == 1
        assert run.out == ""
        assert run.err.count("\n") == 1
        assert run.err.startswith(f"error: {bad}: document 2: SidecarProxyConfig "
                                  f"{test_namespace}/seven: "), run.err
        assert "site policy forbids concurrency 7" in run.err
        for name in ("good", "fine", "seven"):     # the dry run failed: nothing written
            assert not kube_cluster.exists("spc", name, "-n", test_namespace)
    finally:
        kube_cluster.kubectl("delete", "-f", "-", "--ignore-not-found", input=policy)
