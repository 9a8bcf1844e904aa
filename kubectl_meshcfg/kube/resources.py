"""The API resources meshcfg reads and writes, and what one request is about (`Call`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..core import kinds, model
from ..core.kinds import Resource as Resource  # re-exported for the kube layer

SIDECAR_CONFIGS = Resource(model.KIND, model.API_GROUP, model.API_VERSION.split("/")[1],
                           "sidecarproxyconfigs")
CONFIGMAPS = Resource("ConfigMap", "", "v1", "configmaps")
NAMESPACES = Resource("Namespace", "", "v1", "namespaces")
MUTATING_WEBHOOKS = Resource("MutatingWebhookConfiguration", "admissionregistration.k8s.io",
                             "v1", "mutatingwebhookconfigurations")
TARGET_RESOURCES: dict[str, Resource] = dict(kinds.BY_NAME)


@dataclass(frozen=True)
class Call:
    """What a request does, for error messages: verb, resource, namespace, name."""

    verb: str
    resource: Resource
    namespace: str | None = None
    name: str | None = None

    def target(self) -> str:
        what = f'{self.resource.qualified} "{self.name}"' if self.name else self.resource.qualified
        where = f' in namespace "{self.namespace}"' if self.namespace else " at cluster scope"
        return what + where
