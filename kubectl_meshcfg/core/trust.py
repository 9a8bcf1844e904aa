"""Who may put code into workloads (docs/security.md).

A SidecarProxyConfig outside the mesh root namespace may set resources, traffic capture,
logging and lifecycle timing (holdApplicationUntilProxyStarts, terminationDrainDuration,
a `sleep` hook, the drain agent's enabled/minDrainDuration). What runs code or reaches a
host of the object's choosing in every selected pod -- an `exec`, `httpGet` or
`tcpSocket` postStart/preStop hook, the drain agent's `image` (an init container) -- may
only come from objects in the mesh root namespace, which only mesh admins can write.

apply checks it before writing, the shipped ValidatingAdmissionPolicy (`policy()`)
enforces it in the API server, and sync refuses to render a value that breaks it (an
object written before the policy was installed, say) naming the object that asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .effective import Effective, Field

HOOKS = ("lifecycle.postStart", "lifecycle.preStop")
AGENT = "lifecycle.drainAgent"
POLICY_NAME = "meshcfg-trust"


def code_fields(values: Mapping[str, Any]) -> list[str]:
    """The spec paths among a config's leaf values that put code or images into pods."""
    found = []
    for path in HOOKS:
        handler = values.get(path)
        if isinstance(handler, Mapping):
            found += [f"{path}.{kind}" for kind in handler if kind in CODE_HANDLERS]
    agent = values.get(AGENT)
    if isinstance(agent, Mapping) and "image" in agent:
        found.append(f"{AGENT}.image")
    return found


def refusal(namespace: str, root_namespace: str) -> str:
    return (f"only SidecarProxyConfigs in the mesh root namespace {root_namespace!r} may set "
            f"hook handlers that run code or images (this one is in {namespace!r}); "
            "see docs/security.md")


def check_config(namespace: str, values: Mapping[str, Any], root_namespace: str
                 ) -> list[tuple[str, str]]:
    """(spec field, reason) for each code-bearing field a config may not set."""
    if namespace == root_namespace:
        return []
    return [(f"spec.{path}", refusal(namespace, root_namespace)) for path in code_fields(values)]


def untrusted_sources(effective: Effective, root_namespace: str) -> list[str]:
    """Why a resolved target must not be rendered: each code-bearing value whose winning
    source is not a SidecarProxyConfig in the root namespace, naming that source."""
    return untrusted_fields(effective["fields"], root_namespace)


def untrusted_fields(resolved: Mapping[str, Field], root_namespace: str) -> list[str]:
    reasons = []
    for path in (*HOOKS, AGENT):
        field = resolved.get(path)
        found = code_fields({path: field["value"]}) if field is not None else []
        if field is None or not found:
            continue
        source = field["source"]
        if source.get("kind") == "SidecarProxyConfig" and source.get("namespace") == root_namespace:
            continue
        who = (f"{source.get('kind')} {source.get('namespace')}/{source.get('name')}"
               if source.get("kind") else f"the {source['layer']} layer")
        reasons.append(f"{', '.join(found)} comes from {who}, "
                       f"outside the mesh root namespace {root_namespace!r}")
    return reasons


CODE_HANDLERS = ("exec", "httpGet", "tcpSocket")
_LIFECYCLE = "object.spec.lifecycle"


def _absent(parent: str, children: tuple[str, ...]) -> str:
    inner = " && ".join(f"!has({parent}.{child})" for child in children)
    return f"(!has({parent}) || ({inner}))"


VALIDATION = (
    f"!has(object.spec) || !has({_LIFECYCLE}) || ("
    + " && ".join([_absent(f"{_LIFECYCLE}.postStart", CODE_HANDLERS),
                   _absent(f"{_LIFECYCLE}.preStop", CODE_HANDLERS),
                   _absent(f"{_LIFECYCLE}.drainAgent", ("image",))])
    + ")")


def policy(root_namespace: str) -> list[dict[str, Any]]:
    """The ValidatingAdmissionPolicy and its binding: CRD validation rules cannot see an
    object's namespace (only metadata.name and generateName), admission policies can."""
    return [{
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": POLICY_NAME, "labels": {"app.kubernetes.io/part-of": "meshcfg"}},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["meshcfg.io"], "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE"], "resources": ["sidecarproxyconfigs"]}]},
            "validations": [{
                "expression": VALIDATION,
                "messageExpression": (
                    "'only SidecarProxyConfigs in the mesh root namespace " + root_namespace
                    + " may set hook handlers that run code (exec, httpGet, tcpSocket) or "
                    "spec.lifecycle.drainAgent.image; this one is in ' "
                    "+ object.metadata.namespace + ' (see docs/security.md)'"),
                "reason": "Forbidden"}],
        },
    }, {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": POLICY_NAME, "labels": {"app.kubernetes.io/part-of": "meshcfg"}},
        "spec": {
            "policyName": POLICY_NAME,
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchExpressions": [{
                "key": "kubernetes.io/metadata.name", "operator": "NotIn",
                "values": [root_namespace]}]}},
        },
    }]


def render(root_namespace: str = "istio-system") -> str:
    import yaml  # noqa: PLC0415 (only the generator needs it)

    header = ("# Generated by `python -m kubectl_meshcfg.core.trust` (scripts/gen-crd) from\n"
              "# kubectl_meshcfg/core/trust.py. Do not edit by hand. The trust model is in\n"
              "# docs/security.md; the binding exempts the mesh root namespace (istio-system\n"
              "# here: regenerate, or edit the binding's values, for another root namespace).\n")
    return header + yaml.safe_dump_all(policy(root_namespace), sort_keys=False, width=100)


if __name__ == "__main__":
    import sys  # noqa: PLC0415

    sys.stdout.write(render())
