"""Objects read from the cluster that do not validate are reported and skipped, never fatal;
API failures become one line naming verb, resource, namespace and object."""

from __future__ import annotations

import json

import pytest

from kubectl_meshcfg.core.errors import NotFound
from kubectl_meshcfg.core.model import parse_config
from kubectl_meshcfg.kube import errors, reads
from kubectl_meshcfg.kube.errors import ApplyConflict, CrdMissing, Forbidden, Unauthorized
from kubectl_meshcfg.kube.kubeconfig import ClusterAccess
from kubectl_meshcfg.kube.resources import SIDECAR_CONFIGS, TARGET_RESOURCES, Call

ACCESS = ClusterAccess(server="https://api:6443", context="ctx", user_name="me")


def test_invalid_config_from_the_cluster_is_skipped(capsys: pytest.CaptureFixture[str]) -> None:
    doc = {"apiVersion": "meshcfg.io/v1alpha1", "kind": "SidecarProxyConfig",
           "metadata": {"name": "bad", "namespace": "ns"}, "spec": {"proxy": {"concurrency": -1}}}
    assert reads.parse_or_warn(parse_config, doc) is None
    err = capsys.readouterr().err
    assert err.startswith("warning: skipping SidecarProxyConfig ns/bad (invalid in the cluster): "
                          "spec.proxy.concurrency")
    assert err.count("\n") == 1


def error(status: int, body: object, call: Call) -> Exception:
    return errors.api_error(status, json.dumps(body).encode(), call, ACCESS)


def test_error_lines() -> None:
    patch = Call("patch", SIDECAR_CONFIGS, "ns", "cfg")
    forbidden = error(403, {"message": 'sidecarproxyconfigs.meshcfg.io "cfg" is forbidden: User '
                                       '"alice" cannot patch resource ...'}, patch)
    assert isinstance(forbidden, Forbidden)
    assert str(forbidden) == ('error: forbidden: User "alice" cannot patch '
                              'sidecarproxyconfigs.meshcfg.io "cfg" in namespace "ns" '
                              "(meshcfg-editor grants it: manifests/rbac/meshcfg-editor.yaml)")
    unauthorized = error(401, {"message": "Unauthorized"}, patch)
    assert isinstance(unauthorized, Unauthorized)
    assert 'context "ctx" as user "me"' in str(unauthorized)
    conflict = error(409, {"details": {"causes": [
        {"type": "FieldManagerConflict", "field": ".spec.proxy.concurrency",
         "message": 'conflict with "platform" using meshcfg.io/v1alpha1'},
        {"type": "FieldManagerConflict", "field": ".spec.proxy.logLevel",
         "message": 'conflict with "platform" using meshcfg.io/v1alpha1'}]}}, patch)
    assert isinstance(conflict, ApplyConflict)
    assert ('field manager "platform" owns spec.proxy.concurrency, spec.proxy.logLevel'
            in str(conflict))
    missing = error(404, {"message": "the server could not find the requested resource",
                          "details": {}}, patch)
    assert isinstance(missing, CrdMissing)
    gone = error(404, {"details": {"name": "cfg", "kind": "sidecarproxyconfigs"}}, patch)
    assert isinstance(gone, NotFound)
    assert str(gone) == 'error: sidecarproxyconfigs.meshcfg.io "cfg" in namespace "ns" not found'
    pods = Call("list", TARGET_RESOURCES["Pod"], None)
    assert str(error(500, {"reason": "InternalError", "message": "etcd\n down"}, pods)) == (
        "error: list pods at cluster scope failed: 500 InternalError: etcd down")


def test_rollout_tests_forbidden_calls_name_the_role_that_grants_them() -> None:
    from kubectl_meshcfg.kube import rollout as api_rollout  # noqa: PLC0415

    hint = "(meshcfg-rollout-tester grants it: manifests/rbac/meshcfg-rollout-tester.yaml)"
    for call in (Call("create", TARGET_RESOURCES["Pod"], "ns", "gen"),
                 Call("watch", api_rollout.ENDPOINT_SLICES, "ns"),
                 Call("create", api_rollout.EVICTIONS, "ns", "web-1"),
                 Call("get", api_rollout.POD_LOGS, "ns", "gen")):
        found = error(403, {"message": "forbidden"}, call)
        assert isinstance(found, Forbidden) and str(found).endswith(hint), str(found)
    listing = error(403, {"message": "forbidden"}, Call("list", TARGET_RESOURCES["Pod"], "ns"))
    assert "meshcfg-readonly grants it" in str(listing)
    # meshcfg-editor has no write on workloads (docs/security.md): never name it for one
    restart = error(403, {"message": "forbidden"},
                    Call("patch", TARGET_RESOURCES["Deployment"], "ns", "web"))
    assert str(restart).endswith(hint), str(restart)
    job = str(error(403, {"message": "forbidden"}, Call("patch", TARGET_RESOURCES["Job"], "ns", "j")))
    assert "meshcfg-editor" not in job and "workload owner" in job, job
    edit = str(error(403, {"message": "forbidden"},
                     Call("patch", SIDECAR_CONFIGS, "ns", "c")))
    assert "meshcfg-editor grants it" in edit, edit
