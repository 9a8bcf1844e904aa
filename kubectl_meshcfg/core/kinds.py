"""The workload kinds meshcfg explains, renders and syncs: one table, asked by every module.

Adding a kind is one entry here (plus tests): its API group/version and plural, the names
kubectl accepts for it, where its pod template is, which kinds own it, and how a change
of its pod template reaches running pods.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

# How a new pod template reaches running pods.
ROLLOUT_TEMPLATE = "template"        # the controller rolls pods when the template changes
ROLLOUT_NEXT_RUN = "next-run"        # the next Job picks it up
ROLLOUT_NONE = "none"                # the template cannot change in place


@dataclass(frozen=True)
class Resource:
    """An API resource: how kubectl names it and where its REST paths are."""

    kind: str                            # "Deployment"
    group: str                           # "" for the core group
    version: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """kubectl's name for the resource: `pods`, `deployments.apps`, ..."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def singular(self) -> str:
        return f"{self.kind.lower()}.{self.group}" if self.group else self.kind.lower()

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        """The REST path of the collection (or of one object)."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace is not None:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name, safe='')}"
        return base


@dataclass(frozen=True)
class Kind(Resource):
    names: tuple[str, ...]               # what kubectl accepts: singular, plural, short names
    template_path: tuple[str, ...]       # keys from the object to its pod template; () = a Pod
    owners: tuple[str, ...] = ()         # kinds whose controller owns objects of this kind
    rollout: str = ROLLOUT_TEMPLATE
    why_not_synced: str = ""             # why sync cannot change it ("" = it can)

    @property
    def name(self) -> str:
        return self.kind

    @property
    def syncable(self) -> bool:
        return not self.why_not_synced

    def template_field(self, path: str) -> str:
        """A field path below the pod (template), from the object's top."""
        return ".".join((*self.template_path, path))

    def template_of(self, doc: Mapping[str, Any]) -> Mapping[str, Any]:
        """The pod (for a Pod) or pod template of an object; {} when absent."""
        node: Any = doc
        for key in self.template_path:
            node = node.get(key) if isinstance(node, Mapping) else None
        return node if isinstance(node, Mapping) else {}

    def wrap_template(self, template: Mapping[str, Any]) -> dict[str, Any]:
        """The object fragment that holds this pod template (for a Pod, the template)."""
        node: dict[str, Any] = dict(template)
        for key in reversed(self.template_path):
            node = {key: node}
        return node


POD = Kind("Pod", "", "v1", "pods", ("pod", "pods", "po"), (),
           owners=("ReplicaSet", "StatefulSet", "DaemonSet", "Job"), rollout=ROLLOUT_NONE,
           why_not_synced="a bare pod's sidecar cannot change in place; recreate it from its "
                          "rendered manifest (kubectl meshcfg render pod/NAME --merge)")
KINDS: tuple[Kind, ...] = (
    POD,
    Kind("Deployment", "apps", "v1", "deployments", ("deployment", "deployments", "deploy"),
         ("spec", "template")),
    Kind("StatefulSet", "apps", "v1", "statefulsets", ("statefulset", "statefulsets", "sts"),
         ("spec", "template")),
    Kind("DaemonSet", "apps", "v1", "daemonsets", ("daemonset", "daemonsets", "ds"),
         ("spec", "template")),
    Kind("ReplicaSet", "apps", "v1", "replicasets", ("replicaset", "replicasets", "rs"),
         ("spec", "template"), owners=("Deployment",)),
    Kind("Job", "batch", "v1", "jobs", ("job", "jobs"), ("spec", "template"),
         owners=("CronJob",), rollout=ROLLOUT_NONE,
         why_not_synced="a Job's pod template is immutable; its next run picks the config up "
                        "from its CronJob or manifest"),
    Kind("CronJob", "batch", "v1", "cronjobs", ("cronjob", "cronjobs", "cj"),
         ("spec", "jobTemplate", "spec", "template"), rollout=ROLLOUT_NEXT_RUN),
)
BY_NAME: dict[str, Kind] = {kind.name: kind for kind in KINDS}
BY_KUBECTL_NAME: dict[str, Kind] = {name: kind for kind in KINDS for name in kind.names}


def lookup(kubectl_name: str) -> Kind | None:
    """The kind kubectl means by a name such as `deploy`, `StatefulSets`,
    `deployment.apps` or `deployments.v1.apps` (a group, optionally with its version)."""
    name, _, qualifier = kubectl_name.lower().partition(".")
    kind = BY_KUBECTL_NAME.get(name)
    if kind is None or qualifier in ("", kind.group, f"{kind.version}.{kind.group}".rstrip(".")):
        return kind
    return None


def is_target(kind: object) -> bool:
    return isinstance(kind, str) and kind in BY_NAME


def describe_names() -> str:
    return ", ".join(kind.names[0] for kind in KINDS)
