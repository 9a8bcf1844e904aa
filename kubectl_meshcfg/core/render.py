"""Render: the apply configuration that makes an effective config real on stock Istio.

Istio's injector reads only the pod's annotations, `proxy.istio.io/config`, and
containers named `istio-proxy` / `istio-init` in the pod spec, which it strategic-merges
into what it injects (docs/istio-injection-facts.md). So render writes exactly those:

- all four resource annotations together (Istio drops the others when one is missing),
- the six `traffic.sidecar.istio.io/*` annotations and the two log-level annotations,
- `proxy.istio.io/config`, merged into the keys it does not manage,
- an `istio-init` override carrying init's own resources (the annotations set both),
- an `istio-proxy` override for the lifecycle hooks and, with the drain agent, the
  agent's preStop, its volume, and the downward-API environment it needs; with the
  drain agent also the stats the agent reads (`AGENT_STATS_SUFFIXES`, merged into
  `proxyStatsMatcher.inclusionSuffixes`: Istio's bootstrap exports neither by default),
  and a refusal when the pod's grace period leaves the agent no time at all; whether the
  proxy is a native sidecar (`native_sidecar`: the pod annotation, else the agent reads
  the injector's `sidecar.istio.io/status` at run time),
- `meshcfg.io/managed-annotations` (its output, never an input) and
  `meshcfg.io/config-hash` (changes only when the rendered config does).

Pure: no I/O, no click.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import agentstats, blocked, fields, formats, kinds, kubeyaml
from . import annotations as ann
from .effective import Effective, values_of
from .errors import InvalidInput
from .model import AGENT_RESERVE, DEFAULT_GRACE_SECONDS, Target

CONFIG_HASH = "meshcfg.io/config-hash"
AGENT_VOLUME = "meshcfg-drain"
AGENT_DIR = "/meshcfg"
AGENT_BINARY = f"{AGENT_DIR}/meshcfg-drain"
AGENT_INSTALLER = "meshcfg-drain-install"
DEFAULT_AGENT_IMAGE = "meshcfg/drain-agent:0.1.0"
AGENT_IMAGE_BINARY = "/meshcfg-drain"   # where the delivery image keeps the one-file binary
PROXY_UID = 1337
# the Envoy stats meshcfg-drain reads to tell requests in flight from idle keep-alives
AGENT_STATS_SUFFIXES = agentstats.AGENT_STATS_SUFFIXES
NATIVE_SIDECAR_ANNOTATION = "sidecar.istio.io/nativeSidecar"
INJECTION_STATUS_ANNOTATION = "sidecar.istio.io/status"
# the agent's env twin of --istio-status (drain_agent.cli): the injector's record of what
# it added, which says whether istio-proxy became a native sidecar
AGENT_STATUS_ENV = "MESHCFG_DRAIN_ISTIO_STATUS"

# Leaves render writes as annotations, and the proxy.istio.io/config keys it manages.
ANNOTATION_LEAVES = tuple(leaf for leaf in fields.LEAVES
                          if leaf.istio.write == fields.WRITE_ANNOTATION)
PROXY_CONFIG_LEAVES = tuple(leaf for leaf in fields.LEAVES
                            if leaf.istio.write == fields.WRITE_PROXY_CONFIG)


@dataclass
class Rendered:
    """An apply configuration for one target, and what render could not do faithfully."""

    apply_config: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def config_hash(self) -> str:
        return str(template_metadata(self.apply_config)["annotations"][CONFIG_HASH])


def render(target: Target, effective: Effective, agent_image: str = DEFAULT_AGENT_IMAGE) -> Rendered:
    values: Mapping[str, Any] = values_of(effective)
    theirs = ann.user_keys(target.annotations, target.synced_keys)
    notes = _undeliverable(effective, theirs)
    if agent_enabled(values):
        require_agent_budget(target, values)
        values = with_agent_stats(values)   # explain's effective matcher has them already
        notes += [w["message"] for w in agentstats.stats_warnings(
            effective["fields"], target.annotations, target.synced_keys)]
    annotations = _annotations(values, theirs, _derived(effective) | _istio_owned(effective))
    init_containers = [_istio_init(values)]
    containers: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    proxy = _istio_proxy(values, target, agent_image, notes, init_containers, volumes)
    if proxy is not None:
        containers.append(proxy)
    spec: dict[str, Any] = {"initContainers": init_containers}
    if containers:
        spec["containers"] = containers
    if volumes:
        spec["volumes"] = volumes
    annotations[ann.MANAGED_ANNOTATIONS] = ",".join(sorted(annotations))
    annotations[CONFIG_HASH] = _hash(annotations, spec)
    return Rendered(_wrap(target, annotations, spec), notes)


def _derived(effective: Effective) -> frozenset[str]:
    """Leaves at a default pilot-agent derives (render leaves them unset too)."""
    return frozenset(path for path, field in effective["fields"].items()
                     if field["source"]["layer"] == "default"
                     and isinstance(fields.LEAF_BY_PATH.get(path, _PLAIN).default, fields.Derived))


_PLAIN = fields.Leaf("", "string", "")


def _istio_owned(effective: Effective) -> frozenset[str]:
    """Leaves an Istio ProxyConfig sets: istiod delivers them itself, and a copy in the
    annotation would pin today's value (and beat the workload ProxyConfig at run time)."""
    return frozenset(path for path, field in effective["fields"].items()
                     if field["source"]["layer"].startswith("istio-"))


def _annotations(values: Mapping[str, Any], theirs: frozenset[str],
                 derived: frozenset[str]) -> dict[str, str]:
    """meshcfg's annotations: every one the registry writes, except the user's own."""
    result = {leaf.istio.annotation: str(values[leaf.path]) for leaf in ANNOTATION_LEAVES
              if leaf.istio.annotation not in theirs}
    if ann.PROXY_CONFIG not in theirs:
        result[ann.PROXY_CONFIG] = _proxy_config_text(values, derived)
    return result


def _undeliverable(effective: Effective, theirs: frozenset[str]) -> list[str]:
    """Values that only a user's own annotation could carry to the injector, where the
    effective value is not that annotation's (render never changes a user's key)."""
    return [f"{path} is not rendered: the object's own annotation {key} carries it "
            f"to Istio and render never changes a user's annotation; move {key} into "
            "a SidecarProxyConfig (or remove it) to let meshcfg set it"
            for path, key in blocked.blocked(effective["fields"], theirs)]


def _proxy_config_text(values: Mapping[str, Any], derived: frozenset[str]) -> str:
    """meshcfg's `proxy.istio.io/config`: the ProxyConfig keys the registry writes."""
    merged: dict[str, Any] = {}
    metadata = {path[len(fields.METADATA_PREFIX):]: str(value) for path, value in values.items()
                if path.startswith(fields.METADATA_PREFIX) and path not in derived}
    for leaf in PROXY_CONFIG_LEAVES:
        key = leaf.istio.proxy_config
        if leaf.path in derived:
            continue   # left unset: pilot-agent derives it, or an Istio ProxyConfig sets it
        if key.startswith("proxyMetadata."):   # an env flag: always written, true or false
            metadata[key.split(".", 1)[1]] = "true" if values.get(leaf.path) else "false"
        elif values.get(leaf.path) is not None:
            merged[key] = values[leaf.path]
    merged["proxyMetadata"] = dict(sorted(metadata.items()))
    return kubeyaml.dump(merged)      # istiod reads it with go-yaml: `y` must stay a string


def _resources(values: Mapping[str, Any], container: str) -> dict[str, Any]:
    return {group: {res: str(values[f"{container}.resources.{group}.{res}"])
                    for res in ("cpu", "memory")} for group in ("requests", "limits")}


def _istio_init(values: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": "istio-init", "image": "auto", "resources": _resources(values, "init")}


def _istio_proxy(values: Mapping[str, Any], target: Target, agent_image: str, notes: list[str],
                 init_containers: list[dict[str, Any]], volumes: list[dict[str, Any]]
                 ) -> dict[str, Any] | None:
    lifecycle: dict[str, Any] = {}
    post_start = values.get("lifecycle.postStart")
    if post_start is not None:
        if values.get("lifecycle.holdApplicationUntilProxyStarts") and "exec" not in post_start:
            notes.append("lifecycle.postStart is not rendered: with holdApplicationUntilProxyStarts "
                         "Istio merges a non-exec handler with its own exec hook, which the API "
                         "server rejects; use an exec handler")
        else:
            lifecycle["postStart"] = post_start
    proxy: dict[str, Any] = {"name": "istio-proxy", "image": "auto"}
    agent = values.get("lifecycle.drainAgent")
    if agent and agent.get("enabled"):
        native = native_sidecar(target.annotations)
        lifecycle["preStop"] = {"exec": {"command": agent_command(values, target, agent,
                                                                  native)}}
        proxy["env"] = agent_env(native)
        proxy["volumeMounts"] = [{"name": AGENT_VOLUME, "mountPath": AGENT_DIR}]
        init_containers.append(agent_installer(agent.get("image") or agent_image))
        volumes.append({"name": AGENT_VOLUME, "emptyDir": {}})
    elif values.get("lifecycle.preStop") is not None:
        lifecycle["preStop"] = values["lifecycle.preStop"]
    if lifecycle:
        proxy["lifecycle"] = lifecycle
    return proxy if len(proxy) > 2 else None


def agent_enabled(values: Mapping[str, Any]) -> bool:
    agent = values.get("lifecycle.drainAgent")
    return bool(agent and agent.get("enabled"))


def _grace(target: Target) -> int:
    return DEFAULT_GRACE_SECONDS if target.grace_period is None else target.grace_period


def agent_budget(target: Target, values: Mapping[str, Any]) -> float | None:
    """Seconds the agent may wait: grace - terminationDrainDuration - its reserve."""
    drain = formats.parse_duration(str(values.get("lifecycle.terminationDrainDuration") or ""))
    return None if drain is None else _grace(target) - drain - AGENT_RESERVE


def require_agent_budget(target: Target, values: Mapping[str, Any]) -> None:
    """A drain agent with no time at all fails its preStop on every termination (a
    FailedPreStopHook each time): refuse to render it."""
    budget = agent_budget(target, values)
    if budget is None or budget > 0:
        return
    where = target.origin.at(f"{target.kind} {target.namespace}/{target.name}",
                             "spec.lifecycle.drainAgent")
    raise InvalidInput([(where, f"the drain agent has no time: terminationGracePeriodSeconds "
                                f"{_grace(target)}s - terminationDrainDuration "
                                f"{values['lifecycle.terminationDrainDuration']} - "
                                f"{AGENT_RESERVE}s <= 0; raise the grace period or shorten "
                                "the drain")])


def with_agent_stats(values: Mapping[str, Any]) -> dict[str, Any]:
    """The effective values with the agent's stats merged into proxyStatsMatcher."""
    return {**values, agentstats.MATCHER: agentstats.with_agent_stats(
        values.get(agentstats.MATCHER))}


def native_sidecar(annotations: Mapping[str, str]) -> bool | None:
    """Does the injector make istio-proxy a native sidecar? Its pod annotation says so when
    it is "true" or "false" (inject.go moves the proxy by exactly these two); otherwise
    istiod's ENABLE_NATIVE_SIDECARS decides, by default ("auto") from the kubelet versions
    of the nodes at admission time, which no render can know: None, and the agent reads
    the injector's sidecar.istio.io/status through the downward API."""
    value = annotations.get(NATIVE_SIDECAR_ANNOTATION)
    return {"true": True, "false": False}.get(value or "")


def agent_command(values: Mapping[str, Any], target: Target, agent: Mapping[str, Any],
                  native: bool | None = False) -> list[str]:
    grace = DEFAULT_GRACE_SECONDS if target.grace_period is None else target.grace_period
    command = [AGENT_BINARY, "prestop", f"--grace-period={grace}s",
               f"--termination-drain-duration={values['lifecycle.terminationDrainDuration']}"]
    if agent.get("minDrainDuration"):
        command.append(f"--min-drain={agent['minDrainDuration']}")
    if native is not False:
        command.append("--native-sidecar=" + ("auto" if native is None else "true"))
    return command


def agent_env(native: bool | None = False) -> list[dict[str, Any]]:
    def field_ref(path: str) -> dict[str, Any]:
        return {"valueFrom": {"fieldRef": {"fieldPath": path}}}

    env = [{"name": "POD_NAME", **field_ref("metadata.name")},
           {"name": "POD_NAMESPACE", **field_ref("metadata.namespace")},
           {"name": "TMPDIR", "value": AGENT_DIR}]
    if native is None:
        env.append({"name": AGENT_STATUS_ENV,
                    **field_ref(f"metadata.annotations['{INJECTION_STATUS_ANNOTATION}']")})
    return env


def agent_installer(image: str) -> dict[str, Any]:
    """An init container that copies the one-file agent into the volume istio-proxy mounts."""
    return {"name": AGENT_INSTALLER, "image": image,
            "command": [AGENT_IMAGE_BINARY, "install", AGENT_BINARY],
            "env": [{"name": "TMPDIR", "value": AGENT_DIR}],
            "volumeMounts": [{"name": AGENT_VOLUME, "mountPath": AGENT_DIR}],
            "resources": {"requests": {"cpu": "10m", "memory": "32Mi"},
                          "limits": {"cpu": "100m", "memory": "64Mi"}},
            "securityContext": {"runAsUser": PROXY_UID, "runAsGroup": PROXY_UID,
                                "runAsNonRoot": True, "readOnlyRootFilesystem": True,
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]}}}


def _hash(annotations: Mapping[str, str], spec: Mapping[str, Any]) -> str:
    canonical = json.dumps({"annotations": annotations, "spec": spec}, sort_keys=True,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _wrap(target: Target, annotations: dict[str, str], spec: dict[str, Any]) -> dict[str, Any]:
    kind = kinds.BY_NAME[target.kind]
    body: dict[str, Any] = {"apiVersion": kind.api_version, "kind": target.kind,
                            "metadata": {"name": target.name, "namespace": target.namespace}}
    template = {"metadata": {"annotations": annotations}, "spec": spec}
    return merge_apply(body, kind.wrap_template(template))


def template_metadata(body: Mapping[str, Any]) -> Mapping[str, Any]:
    return dict(kinds.BY_NAME[body["kind"]].template_of(body)["metadata"])


def merge_apply(current: Mapping[str, Any], apply_config: Mapping[str, Any]) -> dict[str, Any]:
    """The object as server-side apply would leave it: maps merge key by key, and lists of
    named objects (containers, initContainers, volumes, env, volumeMounts) merge by name."""
    merged = dict(current)
    for key, value in apply_config.items():
        old = merged.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            merged[key] = merge_apply(old, value)
        elif isinstance(value, list) and isinstance(old, list) and _named(value) and _named(old):
            merged[key] = _merge_named(old, value)
        else:
            merged[key] = value
    return merged


def _named(items: list[Any]) -> bool:
    return all(isinstance(item, dict) and "name" in item for item in items)


def _merge_named(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_name = {item["name"]: item for item in new}
    result = [merge_apply(item, by_name.pop(item["name"])) if item["name"] in by_name else item
              for item in old]
    return result + [item for item in new if item["name"] in by_name]
