"""holdApplicationUntilProxyStarts as the injector really decides it. Pure.

Istio has two switches and ORs them: the merged ProxyConfig's field (mesh defaultConfig,
`proxy.istio.io/config`, where meshcfg's layers go) and the injector's deprecated values
key `global.proxy.holdApplicationUntilProxyStarts` (injection-template.yaml `$holdProxy`,
webhook.go reorderPod). So a `true` in the values wins over any `false` above it; layering
alone would show the `false`. The template ignores both for native sidecars.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .effective import Entry, Field, Finding, Source, describe_source

LEAF = "lifecycle.holdApplicationUntilProxyStarts"
VALUES_KEY = "global.proxy.holdApplicationUntilProxyStarts"
CODE = "HoldForcedByInjectorValues"
NATIVE_SIDECAR_ANNOTATION = "sidecar.istio.io/nativeSidecar"
PROXY = "istio-proxy"


def native_sidecar(annotations: Mapping[str, str], pod_spec: Mapping[str, Any]) -> bool:
    """Known to be a native sidecar: the template's test (any annotation value but "false"),
    or an injected pod whose istio-proxy is an init container."""
    value = annotations.get(NATIVE_SIDECAR_ANNOTATION)
    inits = pod_spec.get("initContainers")
    as_init = isinstance(inits, list) and any(
        isinstance(c, dict) and c.get("name") == PROXY for c in inits)
    return as_init or (value is not None and value != "false")


def _from_values(entry: Entry) -> bool:
    source = entry["source"]
    return source["layer"] == "default" and source.get("kind") == "ConfigMap"


def force(resolved: dict[str, Field], native: bool) -> list[Finding]:
    """Where the injector's values say true and a higher layer says false, the sidecar
    still holds the application: the field shows true from the values' ConfigMap (the
    false moves to `overridden`) and a warning says which source lost."""
    field = resolved.get(LEAF)
    if field is None or native or field["value"] is not False:
        return []
    chain: list[Entry] = [{"value": field["value"], "source": field["source"]},
                          *field["overridden"]]
    values = next((e for e in chain if _from_values(e) and e["value"] is True), None)
    if values is None:
        return []
    resolved[LEAF] = {"value": True, "source": values["source"],
                      "overridden": [e for e in chain if e is not values]}
    return [warning(field["source"], values["source"])]


def warning(lost: Source, values: Source) -> Finding:
    """The warning for a `false` from `lost` that the values' ConfigMap overrides."""
    configmap = describe_source(values)
    return {"code": CODE,
            "message": f"{LEAF}: {describe_source(lost)} says false, but the injector's values "
                       f"({configmap}, {VALUES_KEY}: true) turn it on whatever ProxyConfig "
                       "says (the injection template ORs the two): the application waits "
                       "for the proxy",
            "objects": [configmap]}
