"""Admission mode: the objects that make every SidecarProxyConfig take effect when a pod is
created, with no edits to workloads (docs/gitops.md).

- a static MutatingAdmissionPolicy + binding (admissionregistration.k8s.io/v1, Kubernetes
  1.36) whose CEL reads the pod's namespace's `SidecarAdmission` params object;
- per namespace, one `SidecarAdmission` (CRD below) carrying, per workload selector (oldest
  SidecarProxyConfig first, as resolution picks the winner) and a last selector-less entry,
  what `render` writes into a pod template: precedence is resolved here, never in CEL (the
  order of policies and params is unspecified).

The policy adds only annotations the pod does not carry (the user's own win, as in render),
and leaves a pod alone where CEL cannot merge: a user's own `proxy.istio.io/config`, a pod
render already wrote into (meshcfg.io/managed-annotations), or the pod's own container named
as one render adds. Failure policy Ignore: a CEL error never rejects a pod.

Pure: no I/O, no click.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from . import annotations as ann
from . import fields, kinds
from .effective import Finding
from .model import Target
from .render import AGENT_BINARY, CONFIG_HASH, render
from .resolve import Resolver

GROUP = "meshcfg.io"
VERSION = "v1alpha1"
PARAMS_KIND = "SidecarAdmission"
PARAMS_PLURAL = "sidecaradmissions"
PARAMS_NAME = "meshcfg"
POLICY_NAME = "meshcfg-sidecar-config"
FIELD_MANAGER = "kubectl-meshcfg-admission"
MAP_API = "admissionregistration.k8s.io/v1"
GRACE_FLAG = "--grace-period="

# Why a pod is left alone (the same reasons the policy's CEL checks), for lint and docs.
SKIP_PROXY_CONFIG = (f"its own {ann.PROXY_CONFIG} annotation (CEL cannot merge into it)")
SKIP_RENDERED = (f"its template already carries render's output ({ann.MANAGED_ANNOTATIONS})")
SKIP_CONTAINER = "its own container named as one meshcfg adds (CEL cannot merge containers)"
SKIP_SHARED = ("its own {key} annotation, which Istio also reads for istio-init's resources "
               "(render merges it there; CEL cannot)")
# User annotations that feed leaves render writes somewhere else than into that annotation:
# a pod carrying one cannot get render's output from a precomputed entry.
SHARED_KEYS = tuple(sorted({leaf.istio.annotation for leaf in fields.LEAVES
                            if leaf.istio.annotation
                            and leaf.istio.write != fields.WRITE_ANNOTATION}))


def params_crd() -> dict[str, Any]:
    """The CRD of the params kind: typed where CEL reads it, containers kept as written."""
    def free() -> dict[str, Any]:
        return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}

    def strings() -> dict[str, Any]:
        return {"type": "object", "additionalProperties": {"type": "string"}}

    entry = {"type": "object", "required": ["annotations", "annotationKeys", "configHash"],
             "properties": {
                 "source": {"type": "string"},
                 "selector": {"type": "object", "required": ["matchLabels"],
                              "properties": {"matchLabels": strings()}},
                 "annotations": strings(),
                 "annotationKeys": {"type": "array", "items": {"type": "string"}},
                 "configHash": {"type": "string"},
                 "initContainers": {"type": "array", "items": free()},
                 "containers": {"type": "array", "items": free()},
                 "volumes": {"type": "array", "items": free()},
                 "graceArgIndex": {"type": "integer"}}}
    spec = {"type": "object", "required": ["entries"],
            "properties": {"precedence": {"type": "string"},
                           "entries": {"type": "array", "items": entry}}}
    schema = {"type": "object", "properties": {"spec": spec}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{PARAMS_PLURAL}.{GROUP}"},
            "spec": {"group": GROUP, "scope": "Namespaced",
                     "names": {"kind": PARAMS_KIND, "plural": PARAMS_PLURAL,
                               "singular": PARAMS_KIND.lower(), "listKind": f"{PARAMS_KIND}List"},
                     "versions": [{"name": VERSION, "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": schema}}]}}


_VARIABLES = [
    ("labels", "object.metadata.?labels.orValue({})"),
    ("annotations", "object.metadata.?annotations.orValue({})"),
    ("entries", "params.spec.entries.filter(e, !has(e.selector) || "
                "e.selector.matchLabels.all(k, k in variables.labels && "
                "variables.labels[k] == e.selector.matchLabels[k]))"),
    ("entry", "variables.entries[0]"),
    ("names", "object.spec.containers.map(c, c.name) + "
              "object.spec.?initContainers.orValue([]).map(c, c.name) + "
              "object.spec.?volumes.orValue([]).map(v, v.name)"),
    ("skip", "variables.labels[?'sidecar.istio.io/inject'].orValue('') == 'false' || "
             f"{list(SHARED_KEYS)}.exists(k, k in variables.annotations) || "
             f"'{ann.PROXY_CONFIG}' in variables.annotations || "
             f"'{ann.MANAGED_ANNOTATIONS}' in variables.annotations || "
             "(variables.entry.?containers.orValue([]) + variables.entry.?initContainers.orValue([])"
             " + variables.entry.?volumes.orValue([])).exists(c, c.name in variables.names)"),
    ("written", "variables.entry.annotationKeys.filter(k, !(k in variables.annotations))"),
]

_PATCH = """
(has(object.metadata.annotations) ? [] :
  [JSONPatch{op: "add", path: "/metadata/annotations", value: {}}]) +
variables.written.map(k, JSONPatch{op: "add",
  path: "/metadata/annotations/" + jsonpatch.escapeKey(k), value: variables.entry.annotations[k]}) +
[JSONPatch{op: "add", path: "/metadata/annotations/" + jsonpatch.escapeKey("@MANAGED@"),
           value: variables.written.join(",")},
 JSONPatch{op: "add", path: "/metadata/annotations/" + jsonpatch.escapeKey("@HASH@"),
           value: variables.entry.configHash}] +
(!has(variables.entry.initContainers) ? [] : has(object.spec.initContainers) ?
  variables.entry.initContainers.map(c, JSONPatch{op: "add", path: "/spec/initContainers/-",
                                                  value: c}) :
  [JSONPatch{op: "add", path: "/spec/initContainers", value: variables.entry.initContainers}]) +
(!has(variables.entry.containers) ? [] :
  variables.entry.containers.map(c, JSONPatch{op: "add", path: "/spec/containers/-", value: c})) +
(!has(variables.entry.volumes) ? [] : has(object.spec.volumes) ?
  variables.entry.volumes.map(v, JSONPatch{op: "add", path: "/spec/volumes/-", value: v}) :
  [JSONPatch{op: "add", path: "/spec/volumes", value: variables.entry.volumes}]) +
(!has(variables.entry.graceArgIndex) ? [] :
  [JSONPatch{op: "replace",
     path: "/spec/containers/" + string(size(object.spec.containers)) +
           "/lifecycle/preStop/exec/command/" + string(variables.entry.graceArgIndex),
     value: "@GRACE@" + string(object.spec.terminationGracePeriodSeconds) + "s"}])
""".replace("@MANAGED@", ann.MANAGED_ANNOTATIONS).replace("@HASH@", CONFIG_HASH).replace(
    "@GRACE@", GRACE_FLAG)


def policy() -> dict[str, Any]:
    """The static MutatingAdmissionPolicy: the same for every cluster and config."""
    return {
        "apiVersion": MAP_API, "kind": "MutatingAdmissionPolicy",
        "metadata": {"name": POLICY_NAME},
        "spec": {
            "failurePolicy": "Ignore",
            "reinvocationPolicy": "Never",
            "paramKind": {"apiVersion": f"{GROUP}/{VERSION}", "kind": PARAMS_KIND},
            "matchConstraints": {"resourceRules": [{
                "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                "resources": ["pods"]}]},
            "variables": [{"name": name, "expression": expr} for name, expr in _VARIABLES],
            "mutations": [{"patchType": "JSONPatch",
                           "jsonPatch": {"expression":
                                         "size(variables.entries) == 0 || variables.skip ? [] : "
                                         + _PATCH.strip()}}],
        },
    }


# The pods Istio's injector webhooks select (its chart's namespace.* and object.* webhooks),
# so that the policy adds istio-proxy/istio-init overrides only where a sidecar is injected.
_INJECTED = (
    ("namespace", {"matchLabels": {"istio-injection": "enabled"}}, None),
    ("revision", {"matchExpressions": [{"key": "istio-injection", "operator": "DoesNotExist"},
                                       {"key": "istio.io/rev", "operator": "Exists"}]}, None),
    ("object", {"matchExpressions": [{"key": "istio-injection", "operator": "DoesNotExist"},
                                     {"key": "istio.io/rev", "operator": "DoesNotExist"}]},
     {"matchLabels": {"sidecar.istio.io/inject": "true"}}),
)


def bindings() -> list[dict[str, Any]]:
    """Bind the policy to each pod's own namespace's params object (absent: no change), for
    the pods Istio would inject."""
    result = []
    for suffix, namespaces, objects in _INJECTED:
        match: dict[str, Any] = {"namespaceSelector": namespaces}
        if objects is not None:
            match["objectSelector"] = objects
        result.append({"apiVersion": MAP_API, "kind": "MutatingAdmissionPolicyBinding",
                       "metadata": {"name": f"{POLICY_NAME}-{suffix}"},
                       "spec": {"policyName": POLICY_NAME, "matchResources": match,
                                "paramRef": {"name": PARAMS_NAME,
                                             "parameterNotFoundAction": "Allow"}}})
    return result


def static_objects() -> list[dict[str, Any]]:
    return [params_crd(), policy(), *bindings()]


def _entry(resolver: Resolver, namespace: str, labels: Mapping[str, str],
           source: str | None, agent_image: str) -> dict[str, Any]:
    """What render writes into the template of a pod with these labels and no annotations."""
    target = Target(kind="Pod", namespace=namespace, name="admission", labels=labels,
                    annotations={})
    rendered = render(target, resolver.resolve(target), agent_image)
    template = kinds.BY_NAME["Pod"].template_of(rendered.apply_config)
    annotations = dict(template["metadata"]["annotations"])
    config_hash = annotations.pop(CONFIG_HASH)
    annotations.pop(ann.MANAGED_ANNOTATIONS)
    entry: dict[str, Any] = {}
    if source is not None:
        entry["source"] = source
        entry["selector"] = {"matchLabels": dict(labels)}
    entry |= {"annotations": annotations, "annotationKeys": sorted(annotations),
              "configHash": config_hash}
    spec = template["spec"]
    for key in ("initContainers", "containers", "volumes"):
        if spec.get(key):
            entry[key] = spec[key]
    index = _grace_index(spec.get("containers", ()))
    if index is not None:
        entry["graceArgIndex"] = index
    return entry


def _grace_index(containers: Iterable[Mapping[str, Any]]) -> int | None:
    for container in containers:
        command = (container.get("lifecycle", {}).get("preStop", {})
                   .get("exec", {}).get("command", []))
        if command[:1] == [AGENT_BINARY]:
            return next(i for i, arg in enumerate(command) if arg.startswith(GRACE_FLAG))
    return None


def params_for(resolver: Resolver, namespace: str, agent_image: str) -> dict[str, Any]:
    """The namespace's params: one entry per workload selector, oldest first, then the rest."""
    entries = [_entry(resolver, namespace, config.selector or {}, config.ref, agent_image)
               for config in resolver.workload_configs.get(namespace, ())]
    entries.append(_entry(resolver, namespace, {}, None, agent_image))
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": PARAMS_KIND,
            "metadata": {"name": PARAMS_NAME, "namespace": namespace},
            "spec": {"precedence": resolver.precedence, "entries": entries}}


ADDED_NAMES = frozenset({"istio-proxy", "istio-init", "meshcfg-drain-install", "meshcfg-drain"})



def skipped(target: Target) -> Finding | None:
    """lint's AdmissionSkipsPod for a workload (or bare pod) the policy would leave alone."""
    if target.labels.get("sidecar.istio.io/inject") == "false":
        return None
    reason = skip_reason(target)
    if reason is None or reason == SKIP_RENDERED:
        return None     # nothing to say: render's output is in the template already (sync)
    return {"code": "AdmissionSkipsPod",
            "message": f"the admission policy leaves the pods of {target.ref} alone: {reason}"}


def skip_reason(target: Target, entry: Mapping[str, Any] | None = None) -> str | None:
    """Why the policy leaves this pod (or a pod of this template) alone; None if it does not."""
    if ann.MANAGED_ANNOTATIONS in target.annotations:
        return SKIP_RENDERED
    if ann.PROXY_CONFIG in target.annotations:
        return SKIP_PROXY_CONFIG
    shared = sorted(set(SHARED_KEYS) & set(target.annotations))
    if shared:
        return SKIP_SHARED.format(key=shared[0])
    spec = target.pod_spec
    names = {c.get("name") for key in ("containers", "initContainers", "volumes")
             for c in spec.get(key) or ()}
    added = ADDED_NAMES if entry is None else {
        c["name"] for key in ("containers", "initContainers", "volumes") for c in entry.get(key, ())}
    if names & added:
        return SKIP_CONTAINER
    return None


def entry_for(params: Mapping[str, Any], labels: Mapping[str, str]) -> Mapping[str, Any]:
    """The entry the policy's CEL picks for a pod with these labels."""
    for entry in params["spec"]["entries"]:
        selector = entry.get("selector")
        if selector is None or selector["matchLabels"].items() <= labels.items():
            return dict(entry)
    raise ValueError("params without a selector-less entry")
