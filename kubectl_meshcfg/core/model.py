"""The objects resolution works on, parsed and validated from Kubernetes documents.

Parsing is pure: documents come in as dicts (from files or the API), problems go out as
`InvalidInput` naming file, document, object and field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import apirules, bounded, fields, formats, kinds
from .errors import InvalidInput, Location

API_GROUP = "meshcfg.io"
API_VERSION = f"{API_GROUP}/v1alpha1"
KIND = "SidecarProxyConfig"
MESH_CONFIGMAP = "istio"
INJECTOR_CONFIGMAP = "istio-sidecar-injector"
DEFAULT_ISTIO_NAMESPACE = "istio-system"
DEFAULT_GRACE_SECONDS = 30      # Kubernetes' terminationGracePeriodSeconds default
# what meshcfg-drain keeps free after pilot-agent's drain (drain_agent's
# EXTRA_RESERVE_SECONDS: kubelet's 2 s floor, whole-second truncation, skew)
AGENT_RESERVE = 2

@dataclass(frozen=True)
class Origin:
    """Where a document came from: a file (or "-", or "cluster") and its 1-based index."""

    file: str
    document: int | None = None
    # field path -> how the user spelled a YAML 1.1 boolean there (bounded.Census)
    spellings: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def at(self, obj: str | None = None, field_path: str | None = None) -> Location:
        return Location(self.file, self.document, obj, field_path)


CLUSTER = Origin("cluster")


@dataclass(frozen=True)
class SidecarProxyConfig:
    namespace: str
    name: str
    values: Mapping[str, Any]              # leaf path -> normalised value
    selector: Mapping[str, str] | None = None
    precedence: str | None = None
    created: str | None = None              # creationTimestamp (RFC 3339), None offline
    load_order: int = 0
    origin: Origin = CLUSTER
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def age_key(self) -> tuple[int, str, int, str]:
        """Oldest first. Objects without creationTimestamp count as created now, in load
        order: after every object that already exists."""
        if self.created:
            return (0, self.created, 0, self.name)
        return (1, "", self.load_order, self.name)

    def matches(self, labels: Mapping[str, str]) -> bool:
        assert self.selector is not None
        return self.selector.items() <= labels.items()


@dataclass(frozen=True)
class Target:
    """A pod, or a workload explained from its pod template."""

    kind: str
    namespace: str
    name: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    grace_period: int | None = None                 # terminationGracePeriodSeconds
    owner: tuple[str, str] | None = None            # controller ownerReference (kind, name)
    pod_spec: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    origin: Origin = CLUSTER
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # annotation keys only meshcfg's sync manager set (from managedFields); None = unknown,
    # then the keys listed in meshcfg.io/managed-annotations are meshcfg's
    synced_keys: frozenset[str] | None = None

    @property
    def ref(self) -> str:
        return f"{self.kind.lower()}/{self.name}"


@dataclass(frozen=True)
class InjectorValues:
    """The `values` of an injector ConfigMap (`istio-sidecar-injector[-<rev>]`): the chart
    values the installed injector renders its template with."""

    namespace: str
    name: str
    values: Mapping[str, Any]


@dataclass(frozen=True)
class MeshConfig:
    namespace: str
    name: str
    root_namespace: str
    default_config: Mapping[str, Any]


# ---- SidecarProxyConfig ---------------------------------------------------------------------

class _Problems:
    def __init__(self, origin: Origin, obj: str):
        self.origin, self.obj = origin, obj
        self.items: list[tuple[Location, str]] = []

    def add(self, field_path: str, reason: str) -> None:
        spelling = self.origin.spellings.get(field_path)
        if spelling:
            reason = f"{reason} ({spelling})"
        self.items.append((self.origin.at(self.obj, bounded.cut(field_path, 200)), reason))

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidInput(self.items)


TOP_LEVEL_KEYS = ("apiVersion", "kind", "metadata", "spec")
# core/v1 ObjectMeta (strict field validation rejects anything else)
OBJECT_META_KEYS = frozenset((
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
    "annotations", "ownerReferences", "finalizers", "managedFields"))


def in_api_group(doc: Mapping[str, Any]) -> bool:
    """A document of meshcfg's API group (whatever its kind: a wrong kind is an error)."""
    return str(doc.get("apiVersion", "")).startswith(API_GROUP + "/")


def describe_object(doc: Mapping[str, Any], default_namespace: str | None = None) -> str:
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    name = _object_word(meta.get("name", "<no name>"))
    namespace = _object_word(meta.get("namespace", default_namespace))
    kind = _object_word(doc.get("kind", "<no kind>"))
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def _object_word(value: Any) -> str:
    if value is None:
        return ""
    return bounded.cut(value, 80) if isinstance(value, str) else bounded.shown(value)


def parse_config(doc: Mapping[str, Any], origin: Origin, default_namespace: str,
                 load_order: int = 0) -> SidecarProxyConfig:
    """Validate a SidecarProxyConfig document; raises InvalidInput listing every problem."""
    problems = _Problems(origin, describe_object(doc, default_namespace))
    for key in doc:
        if key not in TOP_LEVEL_KEYS:
            problems.add(str(key), f"unknown field (allowed: {', '.join(TOP_LEVEL_KEYS)})")
    if doc.get("apiVersion") != API_VERSION:
        problems.add("apiVersion", f"{bounded.shown(doc.get('apiVersion'))} is not {API_VERSION}")
    if doc.get("kind") != KIND:
        problems.add("kind", f"{bounded.shown(doc.get('kind'))} is not {KIND}")
    meta = doc.get("metadata")
    if not isinstance(meta, dict):
        problems.add("metadata", "is required")
        meta = {}
    for key in meta:
        if key not in OBJECT_META_KEYS:
            problems.add(f"metadata.{key}", "unknown field")
    for path, reason in apirules.check_metadata(meta):
        problems.add(path, reason)
    name = meta.get("name")
    if not isinstance(name, str) or not formats.DNS_SUBDOMAIN_RE.fullmatch(name) or len(name) > 253:
        problems.add("metadata.name", f"{bounded.shown(name)} is not a valid object name")
    namespace = meta.get("namespace") or default_namespace
    if not isinstance(namespace, str) or not formats.DNS_LABEL_RE.fullmatch(namespace):
        problems.add("metadata.namespace", f"{bounded.shown(namespace)} is not a valid namespace")
    nulls = frozenset(apirules.null_paths(doc.get("spec", {}), "spec"))
    for path in sorted(nulls):
        problems.add(path, apirules.NULL_REASON)
    spec_problems = _Problems(origin, problems.obj)
    spec = doc.get("spec")
    values, selector, precedence = _parse_spec({} if spec is None else _drop_nulls(spec),
                                               spec_problems)
    problems.items += [(loc, reason) for loc, reason in spec_problems.items
                       if not apirules.related(loc.field or "", nulls)]
    problems.raise_if_any()
    created = meta.get("creationTimestamp")
    return SidecarProxyConfig(
        namespace=namespace, name=str(name), values=values, selector=selector,
        precedence=precedence, created=str(created) if created else None,
        load_order=load_order, origin=origin, raw=doc)


def _parse_spec(spec: Any, problems: _Problems
                ) -> tuple[dict[str, Any], dict[str, str] | None, str | None]:
    if not isinstance(spec, dict):
        problems.add("spec", "must be an object")
        spec = {}
    values = _walk(spec, "", problems)
    selector = _parse_selector(spec, problems)
    precedence = spec.get("precedence")
    if precedence is not None and precedence not in formats.PRECEDENCES:
        problems.add("spec.precedence",
                     f"{bounded.shown(precedence)} is not one of {', '.join(formats.PRECEDENCES)}")
    lifecycle = spec.get("lifecycle")
    if isinstance(lifecycle, dict) and "preStop" in lifecycle and "drainAgent" in lifecycle:
        problems.add("spec.lifecycle", "preStop and drainAgent are mutually exclusive")
    return values, selector, precedence


def _drop_nulls(value: Any) -> Any:
    """Nulls left out (each is reported on its own); list items stay as they are."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(item) if isinstance(item, dict) else item for item in value]
    return value


def _parse_selector(spec: Mapping[str, Any], problems: _Problems) -> dict[str, str] | None:
    if "selector" not in spec:
        return None
    selector = spec["selector"]
    if not isinstance(selector, dict) or set(selector) - {"matchLabels"}:
        problems.add("spec.selector", "must be {matchLabels: {...}} (only matchLabels is supported)")
        return None
    labels = selector.get("matchLabels")
    if not isinstance(labels, dict) or not labels:
        problems.add("spec.selector.matchLabels",
                     "must be a non-empty map; omit the selector to cover the whole namespace")
        return None
    if len(labels) > formats.MAX_LABELS:
        problems.add("spec.selector.matchLabels", f"has more than {formats.MAX_LABELS} labels")
    for key, value in labels.items():
        if not _valid_label_key(key):
            problems.add(f"spec.selector.matchLabels.{key}", f"{bounded.shown(key)} is not a valid label key")
        elif not isinstance(value, str):
            problems.add(f"spec.selector.matchLabels.{key}",
                         f"{bounded.shown(value)} is not a string: quote label values")
        elif not formats.LABEL_VALUE_RE.fullmatch(value):
            problems.add(f"spec.selector.matchLabels.{key}",
                         f"{bounded.shown(value)} is not a valid label value")
    return {str(k): str(v) for k, v in labels.items()}


def _valid_label_key(key: object) -> bool:
    if not isinstance(key, str) or not key:
        return False
    prefix, slash, name = key.rpartition("/")
    if slash and (len(prefix) > 253 or not formats.DNS_SUBDOMAIN_RE.fullmatch(prefix)):
        return False
    return bool(formats.LABEL_NAME_RE.fullmatch(name))


def _walk(obj: Mapping[str, Any], prefix: str, problems: _Problems) -> dict[str, Any]:
    """Flatten a spec object into leaves, reporting unknown fields and invalid values."""
    values: dict[str, Any] = {}
    allowed = fields.OBJECTS[prefix]
    for key, value in obj.items():
        path = f"{prefix}.{key}" if prefix else key
        if prefix == "" and key in ("selector", "precedence"):
            continue
        if key not in allowed:
            problems.add(f"spec.{path}", f"unknown field (allowed: {', '.join(allowed)})")
        elif path == fields.METADATA_PATH:
            values.update(_walk_metadata(value, problems))
        elif path in fields.LEAF_BY_PATH:
            _add_leaf(values, fields.LEAF_BY_PATH[path], value, problems)
        elif isinstance(value, dict):
            values.update(_walk(value, path, problems))
        elif value is not None:
            problems.add(f"spec.{path}", "must be an object")
    return values


def _add_leaf(values: dict[str, Any], leaf: fields.Leaf, value: Any, problems: _Problems) -> None:
    if value is None:
        return
    problem = fields.check_leaf(leaf, value)
    if problem:
        problems.add(f"spec.{leaf.path}{problem[0]}", problem[1])
    else:
        values[leaf.path] = fields.normalise(leaf, value)


def _walk_metadata(value: Any, problems: _Problems) -> dict[str, Any]:
    if not isinstance(value, dict):
        problems.add("spec.proxy.proxyMetadata", "must be a map of environment variables")
        return {}
    values = {}
    if len(value) > formats.MAX_METADATA_KEYS:
        problems.add("spec.proxy.proxyMetadata",
                     f"has more than {formats.MAX_METADATA_KEYS} entries")
    for key, item in value.items():
        path = f"spec.proxy.proxyMetadata.{key}"
        if (not isinstance(key, str) or not formats.ENV_NAME_RE.fullmatch(key)
                or len(key) > fields.MAX_STRING):
            problems.add(path, f"{bounded.shown(key)} is not a valid environment variable name")
        elif key == fields.DNS_CAPTURE_KEY:
            problems.add(path, "set spec.proxy.dnsCapture instead")
        elif not isinstance(item, str):
            problems.add(path, f"{bounded.shown(item)} must be a string (quote it)")
        elif len(item) > formats.MAX_METADATA_VALUE:
            problems.add(path, f"is longer than {formats.MAX_METADATA_VALUE} characters")
        else:
            values[fields.METADATA_PREFIX + key] = item
    return values


# ---- pods, workloads, the mesh config -------------------------------------------------------

def pod_template(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pod (for a Pod) or pod template (for a workload) of a document."""
    kind = kinds.BY_NAME.get(str(doc.get("kind")))
    return kind.template_of(doc) if kind is not None else {}


def parse_target(doc: Mapping[str, Any], origin: Origin, default_namespace: str) -> Target:
    """A Pod or workload document as a resolution target."""
    problems = _Problems(origin, describe_object(doc, default_namespace))
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        problems.add("metadata.name", "is required")
    template = pod_template(doc)
    tmeta = template.get("metadata") or {}
    labels = _string_map(tmeta.get("labels"), "labels", doc, problems)
    annotations = _string_map(tmeta.get("annotations"), "annotations", doc, problems)
    pod_spec = template.get("spec") or {}
    grace = pod_spec.get("terminationGracePeriodSeconds") if isinstance(pod_spec, dict) else None
    if grace is not None and (isinstance(grace, bool) or not isinstance(grace, int) or grace < 0):
        problems.add(_template_path(doc, "spec.terminationGracePeriodSeconds"),
                     f"{bounded.shown(grace)} is not a whole number of seconds >= 0")
        grace = None
    problems.raise_if_any()
    return Target(kind=str(doc.get("kind")), namespace=str(meta.get("namespace") or default_namespace),
                  name=str(name), labels=labels, annotations=annotations, grace_period=grace,
                  owner=controller_owner(meta), pod_spec=pod_spec if isinstance(pod_spec, dict) else {},
                  origin=origin, raw=doc, synced_keys=_synced_keys(doc, meta))


SYNC_FIELD_MANAGER = "kubectl-meshcfg-sync"


def _synced_keys(doc: Mapping[str, Any], meta: Mapping[str, Any]) -> frozenset[str] | None:
    """Template annotation keys that meshcfg's sync manager set and no other manager did."""
    entries = meta.get("managedFields")
    kind = kinds.BY_NAME.get(str(doc.get("kind")))
    if not isinstance(entries, list) or not entries or kind is None or kind is kinds.POD:
        return None   # a pod's managedFields name its controller: its list is authoritative
    ours: set[str] = set()
    theirs: set[str] = set()
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        node: Any = entry.get("fieldsV1") or {}
        for key in (*kind.template_path, "metadata", "annotations"):
            node = node.get(f"f:{key}") if isinstance(node, dict) else None
        keys = {k[2:] for k in node if k.startswith("f:")} if isinstance(node, dict) else set()
        (ours if entry.get("manager") == SYNC_FIELD_MANAGER else theirs).update(keys)
    return frozenset(ours - theirs)


def _template_path(doc: Mapping[str, Any], path: str) -> str:
    kind = kinds.BY_NAME.get(str(doc.get("kind")))
    return kind.template_field(path) if kind is not None else path


def _string_map(value: Any, what: str, doc: Mapping[str, Any], problems: _Problems) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.add(_template_path(doc, f"metadata.{what}"), "must be a map of strings")
        return {}
    for key, item in value.items():
        if not isinstance(item, str):
            problems.add(_template_path(doc, f"metadata.{what}.{key}"),
                         f"{bounded.shown(item)} is not a string: quote {what[:-1]} values")
            return {}
    return {str(k): v for k, v in value.items()}


def controller_owner(meta: Mapping[str, Any]) -> tuple[str, str] | None:
    for ref in meta.get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return (str(ref.get("kind")), str(ref.get("name")))
    return None


def parse_mesh_config(doc: Mapping[str, Any], origin: Origin, istio_namespace: str) -> MeshConfig:
    """The mesh config from the `istio` ConfigMap (key `mesh`, YAML)."""
    import yaml  # noqa: PLC0415 (yaml is only needed when a mesh config is read)

    from . import kubeyaml  # noqa: PLC0415 (istiod reads it with sigs.k8s.io/yaml)

    obj = describe_object(doc, istio_namespace)
    mesh_text = (doc.get("data") or {}).get("mesh") or ""
    try:
        mesh = kubeyaml.load(mesh_text) or {}
    except yaml.YAMLError as error:
        raise InvalidInput([(origin.at(obj, "data.mesh"), f"invalid YAML: {_first_line(error)}")]) from None
    if not isinstance(mesh, dict):
        raise InvalidInput([(origin.at(obj, "data.mesh"), "must be a YAML map")])
    default_config = mesh.get("defaultConfig") or {}
    if not isinstance(default_config, dict):
        raise InvalidInput([(origin.at(obj, "data.mesh.defaultConfig"), "must be a map")])
    meta = doc.get("metadata") or {}
    return MeshConfig(namespace=str(meta.get("namespace") or istio_namespace),
                      name=str(meta.get("name") or MESH_CONFIGMAP),
                      root_namespace=str(mesh.get("rootNamespace") or istio_namespace),
                      default_config=default_config)


def _first_line(error: Exception) -> str:
    return " ".join(str(error).split())


def parse_injector_values(doc: Mapping[str, Any], origin: Origin, istio_namespace: str
                          ) -> InjectorValues:
    """The injector ConfigMap's `values` (JSON, as the chart writes it; YAML is read too)."""
    import yaml  # noqa: PLC0415

    from . import kubeyaml  # noqa: PLC0415

    obj = describe_object(doc, istio_namespace)
    text = (doc.get("data") or {}).get("values") or ""
    try:
        values = kubeyaml.load(text) or {}
    except yaml.YAMLError as error:
        raise InvalidInput([(origin.at(obj, "data.values"), f"invalid JSON: {_first_line(error)}")]
                           ) from None
    if not isinstance(values, dict):
        raise InvalidInput([(origin.at(obj, "data.values"), "must be a JSON object")])
    meta = doc.get("metadata") or {}
    return InjectorValues(namespace=str(meta.get("namespace") or istio_namespace),
                          name=str(meta.get("name") or INJECTOR_CONFIGMAP), values=values)
