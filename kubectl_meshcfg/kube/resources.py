"""The API resources meshcfg reads and writes, and what one request is about (`Call`)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from ..core import kinds, model


@dataclass(frozen=True)
class Resource:
    kind: str
    group: str          # "" for the core group
    version: str
    plural: str

    @property
    def qualified(self) -> str:
        """kubectl's name for the resource: `pods`, `deployments.apps`, ..."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def singular(self) -> str:
        return f"{self.kind.lower()}.{self.group}" if self.group else self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace is not None:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name, safe='')}"
        return base


SIDECAR_CONFIGS = Resource(model.KIND, model.API_GROUP, model.API_VERSION.split("/")[1],
                           "sidecarproxyconfigs")
CONFIGMAPS = Resource("ConfigMap", "", "v1", "configmaps")
TARGET_RESOURCES: dict[str, Resource] = {
    kind.name: Resource(kind.name, kind.group, kind.version, kind.plural) for kind in kinds.KINDS}


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
