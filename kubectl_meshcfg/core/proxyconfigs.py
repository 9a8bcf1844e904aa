"""Istio's own ProxyConfig objects (`networking.istio.io/v1beta1`, kind ProxyConfig) as
sources: parsing, scopes, and where each sits among meshcfg's layers. Pure.

Where they sit follows what the pinned Istio does (docs/precedence.md has the code
references). At injection istiod merges, lowest first: mesh defaultConfig < root-namespace
ProxyConfig < namespace ProxyConfig < `proxy.istio.io/config` < workload ProxyConfig, and
freezes the result into PROXY_CONFIG and the proxy's environment (proxyMetadata). At start-up
pilot-agent rebuilds its ProxyConfig from PROXY_CONFIG and then applies the pod's
`proxy.istio.io/config` again, so for the fields it reads at run time (concurrency) the
annotation beats the workload ProxyConfig; proxyMetadata stays what injection put into the
environment. meshcfg delivers its own layers (global, namespace, workload, annotation) in
the pod's annotations, so:

  injection-time leaves (proxyMetadata.*, dnsCapture):
      default < mesh < istio-global < istio-namespace < meshcfg's layers < istio-workload
  run-time leaves (concurrency):
      default < mesh < istio-global < istio-namespace < istio-workload < meshcfg's layers
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import annotations as ann
from . import bounded, fields, formats
from .effective import Field, Finding, Source, describe_source
from .errors import InvalidInput, Location
from .model import CLUSTER, Origin
from .revisions import REV_LABEL

GROUP = "networking.istio.io"
KIND = "ProxyConfig"
SERVED_VERSIONS = ("v1beta1",)       # the pinned chart's CRD serves only v1beta1
API_VERSION = f"{GROUP}/{SERVED_VERSIONS[0]}"
GLOBAL, NAMESPACE, WORKLOAD = "istio-global", "istio-namespace", "istio-workload"
LAYERS = (GLOBAL, NAMESPACE, WORKLOAD)
MAX_INT32 = 2**31 - 1
MAX_ENV_VALUE = 2048                 # the CRD's maxLength of environmentVariables values
SPEC_KEYS = ("selector", "concurrency", "environmentVariables", "image")
RUNTIME_LEAVES = frozenset({"proxy.concurrency"})   # pilot-agent re-applies the annotation


def injection_time(leaf: str) -> bool:
    """Leaves that keep their injection-time value (the proxy's environment)."""
    return leaf not in RUNTIME_LEAVES


@dataclass(frozen=True)
class IstioProxyConfig:
    namespace: str
    name: str
    values: Mapping[str, Any]                 # leaf path -> value
    selector: Mapping[str, str] | None = None  # None: no selector (namespace-wide)
    ignored: bool = False                     # `selector` without matchLabels: istiod skips it
    created: str | None = None
    load_order: int = 0
    origin: Origin = CLUSTER
    invalid: tuple[tuple[str, str], ...] = ()   # (where, reason): values the proxy cannot use
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    revision: str | None = None      # label istio.io/rev: only that revision's istiod reads it

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def age_key(self) -> tuple[int, str, int, str, str]:
        """istiod's order (pilot/pkg/model/config.go configCompareByCreationTime):
        creationTimestamp, then name, then namespace; offline documents without a
        creationTimestamp count as created now, in load order."""
        if self.created:
            return (0, self.created, 0, self.name, self.namespace)
        return (1, "", self.load_order, self.name, self.namespace)

    def matches(self, labels: Mapping[str, str]) -> bool:
        return self.selector is not None and self.selector.items() <= labels.items()

    def in_revision(self, revision: str) -> bool:
        """istiod of a revision reads unlabelled objects and its own (pkg/config/model.go
        LabelsInRevision, used by pilot/pkg/config/kube/crdclient; tags do not count)."""
        return self.revision is None or self.revision == revision

    def source(self, layer: str) -> Source:
        return {"layer": layer, "kind": KIND, "namespace": self.namespace, "name": self.name}


def is_proxy_config(doc: Mapping[str, Any]) -> bool:
    """A ProxyConfig document of Istio's group, whatever its version (a version the CRD
    does not serve is an error)."""
    return doc.get("kind") == KIND and str(doc.get("apiVersion", "")).startswith(GROUP + "/")


def parse(doc: Mapping[str, Any], origin: Origin, default_namespace: str,
          load_order: int = 0) -> IstioProxyConfig:
    """Validate a ProxyConfig as its CRD schema does; raises InvalidInput listing every
    problem. Values the schema accepts but the proxy cannot use are kept in `invalid`
    (warnings)."""
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    name, namespace = meta.get("name"), meta.get("namespace") or default_namespace
    obj = f"{KIND} {_word(namespace)}/{_word(name)}"
    problems: list[tuple[Location, str]] = []

    def add(path: str, reason: str) -> None:
        problems.append((origin.at(obj, path), reason))

    version = str(doc.get("apiVersion", "")).removeprefix(GROUP + "/")
    if version not in SERVED_VERSIONS:
        add("apiVersion", f"{bounded.shown(doc.get('apiVersion'))} is not served by the pinned "
                          f"Istio's ProxyConfig CRD (use {API_VERSION})")
    if not isinstance(name, str) or not formats.DNS_SUBDOMAIN_RE.fullmatch(name):
        add("metadata.name", f"{bounded.shown(name)} is not a valid object name")
    if not isinstance(namespace, str) or not formats.DNS_LABEL_RE.fullmatch(namespace):
        add("metadata.namespace", f"{bounded.shown(namespace)} is not a valid namespace")
    spec = doc.get("spec")
    spec = {} if spec is None else spec
    if not isinstance(spec, dict):
        add("spec", "must be an object")
        spec = {}
    for key in spec:
        if key not in SPEC_KEYS and key != "status":
            add(f"spec.{key}", f"unknown field (allowed: {', '.join(SPEC_KEYS)})")
    values: dict[str, Any] = {}
    concurrency = spec.get("concurrency")
    if concurrency is not None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) \
                or not 0 <= concurrency <= MAX_INT32:
            add("spec.concurrency", f"{bounded.shown(concurrency)} is not an integer >= 0")
        else:
            values["proxy.concurrency"] = concurrency
    invalid = _environment(spec.get("environmentVariables"), values, add)
    selector, ignored = _selector(spec.get("selector"), add)
    if problems:
        raise InvalidInput(problems)
    created = meta.get("creationTimestamp")
    labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
    assert isinstance(labels, dict)
    revision = labels.get(REV_LABEL)
    return IstioProxyConfig(namespace=str(namespace), name=str(name), values=values,
                            selector=selector, ignored=ignored,
                            created=str(created) if created else None, load_order=load_order,
                            origin=origin, invalid=tuple((f"{obj} {w}", r) for w, r in invalid),
                            raw=doc, revision=str(revision) if revision is not None else None)


def _word(value: Any) -> str:
    return bounded.cut(value, 80) if isinstance(value, str) else bounded.shown(value)


def _environment(env: Any, values: dict[str, Any], add: Any) -> list[tuple[str, str]]:
    """environmentVariables = proxyMetadata, key by key (ISTIO_META_DNS_CAPTURE is the
    dnsCapture leaf)."""
    if env is None:
        return []
    if not isinstance(env, dict):
        add("spec.environmentVariables", "must be a map of strings")
        return []
    for key, item in env.items():
        if not isinstance(item, str):
            add(f"spec.environmentVariables.{key}", f"{bounded.shown(item)} is not a string")
        elif len(item) > MAX_ENV_VALUE:
            add(f"spec.environmentVariables.{key}", f"is longer than {MAX_ENV_VALUE} characters")
    flag = env.get(fields.DNS_CAPTURE_KEY)
    invalid = []
    if isinstance(flag, str):
        # pilot-agent and istio-iptables read it with Go's strconv.ParseBool; anything
        # else is false there (env.Register's default), whatever the layers below say
        parsed = GO_BOOLS.get(flag)
        values["proxy.dnsCapture"] = bool(parsed)
        if parsed is None:
            invalid.append((f"spec.environmentVariables.{fields.DNS_CAPTURE_KEY}",
                            f"{bounded.shown(flag)} is not a boolean: the proxy reads it as false"))
    others = {k: v for k, v in env.items() if k != fields.DNS_CAPTURE_KEY}
    read = ann.read_proxy_config({"proxyMetadata": others}, "spec.environmentVariables")
    values.update(read.values)
    return invalid + [(where.replace(" proxyMetadata.", "."), reason)
                      for where, reason in read.invalid]


GO_BOOLS = {**dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
            **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False)}


def _selector(selector: Any, add: Any) -> tuple[dict[str, str] | None, bool]:
    if selector is None:
        return None, False
    if not isinstance(selector, dict) or set(selector) - {"matchLabels"}:
        add("spec.selector", "must be {matchLabels: {...}}")
        return None, False
    labels = selector.get("matchLabels")
    if labels is None or labels == {}:
        return None, True     # istiod uses it for neither the namespace nor the workload scope
    if not isinstance(labels, dict) or not all(
            isinstance(k, str) and k and isinstance(v, str) and "*" not in k + v
            for k, v in labels.items()):
        add("spec.selector.matchLabels", "must be a map of label strings without wildcards")
        return None, False
    return dict(labels), False


# ---- scopes ----------------------------------------------------------------------------------

@dataclass
class Scopes:
    """The ProxyConfigs of each scope, oldest first (istiod's order)."""

    root_namespace: str
    global_: list[IstioProxyConfig] = field(default_factory=list)
    namespace: dict[str, list[IstioProxyConfig]] = field(default_factory=dict)
    workload: dict[str, list[IstioProxyConfig]] = field(default_factory=dict)
    revisioned: bool = False          # some object is labelled istio.io/rev

    @classmethod
    def of(cls, configs: Iterable[IstioProxyConfig], root_namespace: str) -> Scopes:
        scopes = cls(root_namespace)
        for config in sorted(configs, key=IstioProxyConfig.age_key):
            if config.ignored:
                continue
            scopes.revisioned = scopes.revisioned or config.revision is not None
            if config.selector is not None:
                scopes.workload.setdefault(config.namespace, []).append(config)
            elif config.namespace == root_namespace:
                scopes.global_.append(config)
            else:
                scopes.namespace.setdefault(config.namespace, []).append(config)
        return scopes

    def for_global(self, revision: str) -> list[IstioProxyConfig]:
        return [c for c in self.global_ if c.in_revision(revision)]

    def for_namespace(self, namespace: str, revision: str) -> list[IstioProxyConfig]:
        """Skipped for pods in the root namespace (pilot/pkg/model/proxy_config.go)."""
        if namespace == self.root_namespace:
            return []
        return [c for c in self.namespace.get(namespace, ()) if c.in_revision(revision)]

    def for_workload(self, namespace: str, labels: Mapping[str, str], revision: str
                     ) -> list[IstioProxyConfig]:
        return [c for c in self.workload.get(namespace, ())
                if c.matches(labels) and c.in_revision(revision)]


def conflicts(layer: str, candidates: Sequence[IstioProxyConfig]) -> list[Finding]:
    if len(candidates) < 2:
        return []
    losers = [c.ref for c in candidates[1:]]
    return [{"code": "ProxyConfigConflict",
             "message": f"{len(candidates)} Istio ProxyConfigs compete for the {layer} layer; "
                        f"the oldest, {candidates[0].ref}, wins whole (as istiod picks) and "
                        f"{', '.join(losers)} {'is' if len(losers) == 1 else 'are'} ignored",
             "objects": [candidates[0].ref, *losers]}]


def invalid_values(configs: Iterable[IstioProxyConfig]) -> list[Finding]:
    return [{"code": "InvalidProxyConfig", "message": f"{where}: {reason}; ignored"}
            for config in configs for where, reason in config.invalid]


# ---- injection vs run time -------------------------------------------------------------------

def overridden_at_runtime(resolved: Mapping[str, Field], workload: IstioProxyConfig | None
                          ) -> list[Finding]:
    """A workload ProxyConfig's run-time value that the pod's annotation replaces when
    pilot-agent starts: PROXY_CONFIG says one thing, Envoy runs another."""
    if workload is None:
        return []
    found: list[Finding] = []
    for leaf in sorted(RUNTIME_LEAVES & set(workload.values)):
        field_ = resolved.get(leaf)
        if field_ is None or field_["source"]["layer"] in (*LAYERS, "default", "mesh"):
            continue
        injected = workload.values[leaf]
        if field_["value"] == injected:
            continue
        winner = describe_source(field_["source"])
        via = "" if field_["source"]["layer"] == "annotation" else \
            f", delivered in {fields.PROXY_CONFIG_ANNOTATION}"
        found.append({
            "code": "ProxyConfigOverriddenAtRuntime",
            "message": f"{leaf}: the injected PROXY_CONFIG says {injected} (ProxyConfig "
                       f"{workload.ref}, which istiod merges over {fields.PROXY_CONFIG_ANNOTATION}"
                       f") but Envoy runs {field_['value']} ({winner}{via}): pilot-agent "
                       f"applies {fields.PROXY_CONFIG_ANNOTATION} again at start-up",
            "objects": [workload.ref, winner]})
    return found
