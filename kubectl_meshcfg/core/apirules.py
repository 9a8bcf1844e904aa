"""What the API server checks beyond the CRD's spec schema, mirrored for `--local`: ObjectMeta
(k8s.io/apimachinery `pkg/api/validation/objectmeta.go`) and explicit nulls, which
server-side apply (meshcfg's apply) rejects anywhere in spec while a plain `kubectl apply`
prunes them. Each check returns (field path, reason) pairs; the caller names file, document
and object."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from . import bounded, formats

Problem = tuple[str, str]

MAX_ANNOTATIONS_BYTES = 256 * 1024        # TotalAnnotationSizeLimitB
NULL_REASON = "is null: remove the field or give it a value (server-side apply rejects nulls)"
_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)$")


def null_paths(value: Any, path: str) -> Iterator[str]:
    """Every map entry below `path` (itself included) whose value is null. Null list items
    are left to the checks of the list's own field."""
    if value is None:
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from null_paths(item, f"{path}.{key}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (dict, list)):
                yield from null_paths(item, path)


def related(path: str, nulls: frozenset[str]) -> bool:
    """Is a problem at `path` a consequence of a null already reported (same field, above
    it or below it)?"""
    return any(path == n or path.startswith(n + ".") or n.startswith(path + ".") for n in nulls)


def check_metadata(meta: Mapping[str, Any]) -> list[Problem]:
    """ObjectMeta fields as the API server validates them on apply."""
    problems = check_string_map(meta.get("labels"), "metadata.labels", label=True)
    problems += check_string_map(meta.get("annotations"), "metadata.annotations", label=False)
    problems += _check_finalizers(meta.get("finalizers"))
    problems += _check_owner_references(meta.get("ownerReferences"))
    generate = meta.get("generateName")
    if generate is not None and not isinstance(generate, str):
        problems.append(("metadata.generateName", f"{bounded.shown(generate)} is not a string"))
    created = meta.get("creationTimestamp")
    if created is not None and not (isinstance(created, str) and valid_time(created)):
        problems.append(("metadata.creationTimestamp",
                         f"{bounded.shown(created)} is not an RFC 3339 time "
                         "(2006-01-02T15:04:05Z)"))
    return problems


def check_string_map(value: Any, path: str, label: bool) -> list[Problem]:
    """Labels (label=True) or annotations: a map of strings (a null value reads as ""),
    keys qualified names, label values label-shaped, annotations at most 256 KiB."""
    if value is None:
        return []
    if not isinstance(value, dict):
        return [(path, "must be a map of strings")]
    problems: list[Problem] = []
    size = 0
    for key, item in value.items():
        if item is not None and not isinstance(item, str):
            problems.append((path, f"must be a map of strings: {key}: {bounded.shown(item)} "
                             "is not a string (quote the values)"))
            continue
        text = item or ""
        size += len(str(key).encode()) + len(text.encode())
        if not qualified_name(str(key).lower() if not label else str(key)):
            problems.append((path, f"{bounded.shown(key)} is not a valid key: [prefix/]name, "
                             "name alphanumeric, '-', '_' or '.' (at most 63 characters)"))
        elif label and not formats.LABEL_VALUE_RE.fullmatch(text):
            problems.append((path, f"{key}: {bounded.shown(text)} is not a valid label value"))
    if not label and size > MAX_ANNOTATIONS_BYTES:
        problems.append((path, f"are {size} bytes, more than {MAX_ANNOTATIONS_BYTES}"))
    return problems


def qualified_name(key: str) -> bool:
    """Kubernetes' IsQualifiedName: an optional DNS-subdomain prefix and a name part."""
    if not key:
        return False
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253
                  or not formats.DNS_SUBDOMAIN_RE.fullmatch(prefix)):
        return False
    return bool(formats.LABEL_NAME_RE.fullmatch(name))


def _check_finalizers(value: Any) -> list[Problem]:
    if value is None:
        return []
    if not isinstance(value, list):
        return [("metadata.finalizers", "must be a list of strings")]
    for item in value:
        if not isinstance(item, str):
            return [("metadata.finalizers", f"{bounded.shown(item)} is not a string")]
        if not qualified_name(item):
            return [("metadata.finalizers", f"{bounded.shown(item)} is not a valid "
                     "finalizer name ([prefix/]name)")]
    return []


_OWNER_STRINGS = ("apiVersion", "kind", "name", "uid")


def _check_owner_references(value: Any) -> list[Problem]:
    if value is None:
        return []
    if not isinstance(value, list):
        return [("metadata.ownerReferences", "must be a list of owner references")]
    problems: list[Problem] = []
    controllers = 0
    for item in value:
        if not isinstance(item, dict):
            return [("metadata.ownerReferences", f"{bounded.shown(item)} is not an object")]
        for key in _OWNER_STRINGS:
            text = item.get(key)
            if not isinstance(text, str) or not text or (
                    key == "apiVersion" and not text.rpartition("/")[2]):
                problems.append((f"metadata.ownerReferences.{key}",
                                 f"{bounded.shown(text)} must be a non-empty string"))
        for key in ("controller", "blockOwnerDeletion"):
            flag = item.get(key)
            if flag is not None and not isinstance(flag, bool):
                problems.append((f"metadata.ownerReferences.{key}",
                                 f"{bounded.shown(flag)} is not a boolean"))
        controllers += item.get("controller") is True
    if controllers > 1:
        problems.append(("metadata.ownerReferences", "only one reference can have controller "
                         "set to true"))
    return problems


def valid_time(text: str) -> bool:
    """An RFC 3339 time, as metav1.Time decodes it (creationTimestamp orders objects
    offline; apply leaves it out of what it sends)."""
    if not _RFC3339.fullmatch(text):
        return False
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
