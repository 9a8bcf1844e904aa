"""Values a user's own annotation keeps from the sidecar. Pure.

Istio's injector reads a leaf from one annotation (`sidecar.istio.io/logLevel`, ...,
`proxy.istio.io/config` for the ProxyConfig keys). Where the user wrote that annotation
and the effective value comes from somewhere else (a SidecarProxyConfig under
workload-first, or a key the user's `proxy.istio.io/config` does not carry), render and
sync cannot deliver it: they never change a user's annotation. explain and lint warn
(`UserAnnotationBlocks`), render and sync note it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from . import annotations as ann
from . import fields
from .effective import Field, Finding, describe_source

CODE = "UserAnnotationBlocks"


def _carrier(path: str) -> str:
    """The annotation that carries a leaf to the injector ("" for none)."""
    leaf = fields.leaf_for(path)
    write = leaf.istio.write or (fields.WRITE_PROXY_CONFIG if path.startswith(
        fields.METADATA_PREFIX) else "")
    if write == fields.WRITE_ANNOTATION:
        return leaf.istio.annotation
    return ann.PROXY_CONFIG if write == fields.WRITE_PROXY_CONFIG else ""


def blocked(resolved: Mapping[str, Field], theirs: frozenset[str]) -> list[tuple[str, str]]:
    """(leaf, the user's annotation) for every effective value it keeps from the sidecar."""
    if not theirs:
        return []
    found = []
    for path, entry in resolved.items():
        key = _carrier(path)
        source = entry["source"]
        if key not in theirs or source.get("annotation") == key:
            continue
        if key == ann.PROXY_CONFIG and (source["layer"] in ("mesh", "default")
                                        or source["layer"].startswith("istio-")):
            continue   # the injector merges the mesh config and ProxyConfigs itself
        found.append((path, key))
    return found


def findings(resolved: Mapping[str, Field], theirs: frozenset[str], read: frozenset[str]
             ) -> list[Finding]:
    """The warnings; `read` are the annotation keys that gave a valid value (an invalid
    single-value annotation has its own warning, InvalidAnnotation)."""
    theirs = frozenset(k for k in theirs if k == ann.PROXY_CONFIG or k in read)
    return [{"code": CODE,
             "message": f"{path}: {_show(resolved[path]['value'])} from "
                        f"{describe_source(resolved[path]['source'])} never reaches the sidecar: the "
                        f"object's own annotation {key} carries this field to Istio, and "
                        "render and sync never change a user's annotation",
             "objects": [key]}
            for path, key in blocked(resolved, theirs)]


def _show(value: object) -> str:
    if isinstance(value, dict | list | bool):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
