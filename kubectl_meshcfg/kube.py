"""The one module that talks to the Kubernetes API.

Reads are raw JSON over a pooled HTTPS connection (urllib3), paginated with
`limit`/`continue` like kubectl, and several lists run concurrently: the `kubernetes`
client's per-object models are far too slow for 10,000 pods, and importing the client
alone costs most of a second. The client is imported lazily, and only for what it does
best: running exec credential plugins. kubeconfig handling (kubectl's merge rules) is in
`kubeconfig.py`.

Every request is counted (`Api.requests`); with `MESHCFG_TRACE_API=1` each one is logged
to stderr (`I0000 GET https://... 200 OK in 12 ms`, like `kubectl -v=6`) and a summary line
`meshcfg: N API requests` ends the run.

API failures become one-line errors here (`_api_error`), naming the verb, resource,
namespace and object; their types and exit codes are in `errors.py`.

Objects read from the cluster that do not validate (stored before the CRD tightened, or
with no CRD schema at all) do not kill the command: each is reported as one `warning:`
line on stderr and left out, so every other target still resolves.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from . import model
from .errors import (
    ApiError,
    ApplyConflict,
    CrdMissing,
    Forbidden,
    InvalidInput,
    MeshcfgError,
    NotFound,
    Unauthorized,
    Unreachable,
)
from .inventory import Inventory, TargetQuery
from .kubeconfig import ClusterAccess, KubeconfigError, load_access
from .model import CLUSTER

if TYPE_CHECKING:
    import urllib3

    from .cli import Scope

PAGE_SIZE = int(os.environ.get("MESHCFG_PAGE_SIZE", "500"))   # kubectl's chunk size
FIELD_MANAGER = "kubectl-meshcfg"
CRD_NAME = f"sidecarproxyconfigs.{model.API_GROUP}"
CRD_HINT = "install it with: kubectl apply -f manifests/crds/"


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
    "Pod": Resource("Pod", "", "v1", "pods"),
    "Deployment": Resource("Deployment", "apps", "v1", "deployments"),
    "StatefulSet": Resource("StatefulSet", "apps", "v1", "statefulsets"),
    "DaemonSet": Resource("DaemonSet", "apps", "v1", "daemonsets"),
    "ReplicaSet": Resource("ReplicaSet", "apps", "v1", "replicasets"),
    "Job": Resource("Job", "batch", "v1", "jobs"),
    "CronJob": Resource("CronJob", "batch", "v1", "cronjobs"),
}


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


# ---- access -----------------------------------------------------------------------------------

@lru_cache(maxsize=8)
def _access(kubeconfig: str | None, context: str | None, env: str | None) -> ClusterAccess:
    return load_access(kubeconfig, context)


def access_for(scope: Scope) -> ClusterAccess:
    """The kubeconfig is read once per invocation (keyed on $KUBECONFIG too, for tests that
    run the CLI in-process with another environment)."""
    return _access(scope.kubeconfig, scope.context, os.environ.get("KUBECONFIG"))


def current_namespace(scope: Scope) -> str:
    """`-n`, else the context's namespace, else `default` (kubectl's rule)."""
    if scope.namespace:
        return scope.namespace
    try:
        return access_for(scope).namespace
    except KubeconfigError:
        if scope.local:
            return "default"
        raise


# ---- transport --------------------------------------------------------------------------------

class Api:
    """Raw JSON requests to one API server, counted and mapped to one-line errors."""

    def __init__(self, access: ClusterAccess, timeout: float = 60.0, connections: int = 8):
        self.access = access
        self.connections = connections
        self.timeout = timeout
        self.requests = 0
        self.trace = os.environ.get("MESHCFG_TRACE_API", "") not in ("", "0")
        self._lock = threading.Lock()
        self._pool: urllib3.PoolManager | None = None
        self._headers: dict[str, str] = {}
        self._temp_files: list[str] = []
        if self.trace:
            atexit.register(self._summary)

    # -- connection ---------------------------------------------------------------------------
    def _connect(self) -> urllib3.PoolManager:
        with self._lock:
            if self._pool is None:
                self._pool = self._make_pool()
            return self._pool

    def _make_pool(self) -> urllib3.PoolManager:
        import urllib3  # noqa: PLC0415

        access = self.access
        headers = {"Accept": "application/json", "User-Agent": "kubectl-meshcfg"}
        cert_file, key_file = access.cert_file, access.key_file
        token = access.token
        if access.auth_provider and not token:
            raise KubeconfigError(
                f'{access.describe()}: auth-provider "{access.auth_provider}" is not '
                "supported; use an exec credential plugin (users[].user.exec) instead")
        if access.exec_config and not token and not (cert_file or access.cert_data):
            token, exec_cert, exec_key = _run_exec_plugin(access)
            if exec_cert and exec_key:
                cert_file, key_file = self._temp(exec_cert), self._temp(exec_key)
        if token is None and access.token_file:
            try:
                with open(access.token_file, encoding="utf-8") as handle:
                    token = handle.read().strip()
            except OSError as error:
                raise KubeconfigError(f"cannot read tokenFile {access.token_file}: "
                                      f"{error.strerror}") from None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif access.username is not None and access.password is not None:
            headers.update(urllib3.make_headers(
                basic_auth=f"{access.username}:{access.password}"))
        self._headers = headers
        kwargs: dict[str, Any] = {"maxsize": self.connections, "retries": False, "block": False}
        if access.server.startswith("https://"):
            kwargs["ssl_context"] = self._ssl_context(cert_file, key_file)
            if access.tls_server_name:
                kwargs["server_hostname"] = access.tls_server_name
            if access.insecure:
                kwargs["cert_reqs"] = "CERT_NONE"
                urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        if access.proxy_url:
            return urllib3.ProxyManager(access.proxy_url, **kwargs)
        return urllib3.PoolManager(**kwargs)

    def _ssl_context(self, cert_file: str | None, key_file: str | None) -> ssl.SSLContext:
        access = self.access
        context = ssl.create_default_context()
        if access.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif access.ca_data:
            context.load_verify_locations(cadata=access.ca_data.decode("utf-8", "replace"))
        elif access.ca_file:
            try:
                context.load_verify_locations(cafile=access.ca_file)
            except OSError as error:
                raise KubeconfigError(f"cannot read certificate-authority {access.ca_file}: "
                                      f"{error.strerror}") from None
        cert_file = cert_file or (self._temp(access.cert_data) if access.cert_data else None)
        key_file = key_file or (self._temp(access.key_data) if access.key_data else None)
        if cert_file:
            try:
                context.load_cert_chain(cert_file, key_file)
            except (OSError, ssl.SSLError) as error:
                raise KubeconfigError(f"{access.describe()}: cannot load the client "
                                      f"certificate: {error}") from None
        return context

    def _temp(self, data: bytes) -> str:
        handle, path = tempfile.mkstemp(prefix="meshcfg-", suffix=".pem")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        self._temp_files.append(path)
        atexit.register(_remove, path)
        return path

    # -- requests -----------------------------------------------------------------------------
    def request(self, method: str, call: Call, path: str, query: Mapping[str, str] | None = None,
                body: bytes | None = None, content_type: str | None = None,
                missing_ok: bool = False) -> Any:
        """One request; returns the decoded JSON (None for a 404 when missing_ok)."""
        import urllib3  # noqa: PLC0415

        pool = self._connect()
        url = self.access.server + path + (f"?{urlencode(query)}" if query else "")
        headers = dict(self._headers)
        if content_type:
            headers["Content-Type"] = content_type
        started = time.monotonic()
        with self._lock:
            self.requests += 1
        try:
            response = pool.request(method, url, body=body, headers=headers,
                                    timeout=urllib3.Timeout(connect=10.0, read=self.timeout),
                                    preload_content=True, redirect=False)
        except urllib3.exceptions.HTTPError as error:
            self._log(method, url, "failed", started)
            raise _unreachable(self.access, error) from error
        self._log(method, url, f"{response.status} {response.reason or ''}".strip(), started)
        if response.status == 404 and missing_ok:
            return None
        if response.status >= 400:
            raise _api_error(response.status, response.data, call, self.access)
        try:
            return json.loads(response.data)
        except ValueError:
            raise ApiError(f"error: the API server at {self.access.server} answered {method} "
                           f"{path} with something that is not JSON") from None

    def get(self, call: Call, missing_ok: bool = False) -> Any:
        path = call.resource.path(call.namespace, call.name)
        return self.request("GET", call, path, missing_ok=missing_ok)

    def list(self, resource: Resource, namespace: str | None,
             label_selector: str | None = None) -> list[dict[str, Any]]:
        """Every object of a kind, in pages of PAGE_SIZE; `namespace=None` = cluster-wide."""
        call = Call("list", resource, namespace)
        path = resource.path(namespace)
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            query = {"limit": str(PAGE_SIZE)}
            if token:
                query["continue"] = token
            if label_selector:
                query["labelSelector"] = label_selector
            page = self.request("GET", call, path, query)
            items += page.get("items") or []
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                return items

    def _log(self, method: str, url: str, status: str, started: float) -> None:
        if self.trace:
            elapsed = (time.monotonic() - started) * 1000
            with self._lock:
                print(f"I0000 {method} {url} {status} in {elapsed:.0f} milliseconds",
                      file=sys.stderr, flush=True)

    def _summary(self) -> None:
        print(f"meshcfg: {self.requests} API requests", file=sys.stderr)


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _run_exec_plugin(access: ClusterAccess) -> tuple[str | None, bytes | None, bytes | None]:
    """Run the kubeconfig's exec credential plugin with the kubernetes client's runner."""
    import importlib  # noqa: PLC0415

    exec_provider: Any = importlib.import_module("kubernetes.config.exec_provider")
    kube_config: Any = importlib.import_module("kubernetes.config.kube_config")
    assert access.exec_config is not None
    try:
        status = exec_provider.ExecProvider(
            kube_config.ConfigNode("exec", dict(access.exec_config)), access.exec_dir,
            kube_config.ConfigNode("cluster", {"server": access.server})).run()
    except (exec_provider.ConfigException, OSError) as error:
        raise KubeconfigError(f"{access.describe()}: exec credential plugin failed: "
                              f"{' '.join(str(error).split())}") from None
    token = status.get("token")
    cert = status.get("clientCertificateData")
    key = status.get("clientKeyData")
    return (str(token) if token else None, cert.encode() if cert else None,
            key.encode() if key else None)


# ---- errors -----------------------------------------------------------------------------------

def _unreachable(access: ClusterAccess, error: Exception) -> Unreachable:
    reason = error
    while getattr(reason, "reason", None) is not None and reason is not reason.reason:  # type: ignore[attr-defined]
        reason = reason.reason  # type: ignore[attr-defined]
    text = " ".join(str(reason).split())
    if "CERTIFICATE_VERIFY_FAILED" in text or isinstance(reason, ssl.SSLError):
        detail = f"TLS failed ({text}); check the kubeconfig's certificate-authority"
    elif "refused" in text.lower():
        detail = "connection refused"
    elif "timed out" in text.lower() or "timeout" in text.lower():
        detail = "connection timed out"
    else:
        detail = text
    return Unreachable(f"error: cannot reach the Kubernetes API server at {access.server} "
                       f"({access.describe()}): {detail} - is the cluster running and is "
                       "the kubeconfig right?")


_USER_RE = re.compile(r'User "([^"]*)"')


def _api_error(status: int, data: bytes, call: Call, access: ClusterAccess) -> MeshcfgError:
    """One line for a failed request, naming what was attempted."""
    body = _status_body(data)
    message = " ".join(str(body.get("message") or data[:200].decode("utf-8", "replace")).split())
    if status == 401:
        user = f' as user "{access.user_name}"' if access.user_name else ""
        return Unauthorized(f"error: the API server at {access.server} rejected the credentials "
                            f"of {access.describe()}{user} (401 Unauthorized): the token or "
                            "certificate is invalid or expired")
    if status == 403:
        match = _USER_RE.search(message)
        who = f'User "{match[1]}"' if match else "you"
        return Forbidden(f"error: forbidden: {who} cannot {call.verb} {call.target()} "
                         f"({_rbac_hint(call.verb)})")
    if status == 404:
        details = body.get("details") or {}
        if details.get("kind") == "namespaces" and details.get("name"):
            return NotFound(f'error: namespace "{details["name"]}" not found')
        if call.resource is SIDECAR_CONFIGS and not details.get("name"):
            return CrdMissing(f"error: the cluster has no {model.KIND} resource (CRD {CRD_NAME} "
                              f"is not installed): {CRD_HINT}")
        return NotFound(f"error: {call.target()} not found")
    if status == 409:
        return _conflict(body, call, message)
    if status == 422:
        return ApiError(f"error: the API server rejected {call.resource.singular} "
                        f"{call.namespace}/{call.name}: {_causes(body) or message}")
    return ApiError(f"error: {call.verb} {call.target()} failed: {status} "
                    f"{body.get('reason') or ''}: {message}".replace(" : ", ": "))


def _status_body(data: bytes) -> dict[str, Any]:
    try:
        body = json.loads(data)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _rbac_hint(verb: str) -> str:
    if verb in ("patch", "create", "update", "delete"):
        return "meshcfg-editor grants it: manifests/rbac/meshcfg-editor.yaml"
    return "meshcfg-readonly grants it: manifests/rbac/meshcfg-readonly.yaml"


_MANAGER_RE = re.compile(r'conflict with "([^"]*)"')


def _conflict(body: Mapping[str, Any], call: Call, message: str) -> ApiError:
    causes = [c for c in ((body.get("details") or {}).get("causes") or [])
              if isinstance(c, dict)]
    by_manager: dict[str, list[str]] = {}
    for cause in causes:
        match = _MANAGER_RE.search(str(cause.get("message", "")))
        manager = match[1] if match else "another field manager"
        by_manager.setdefault(manager, []).append(str(cause.get("field", "?")).lstrip("."))
    if not by_manager:
        return ApplyConflict(f"error: conflict on {call.target()}: {message}")
    owners = "; ".join(f'field manager "{m}" owns {", ".join(f)}' for m, f in by_manager.items())
    return ApplyConflict(f"error: apply conflict on {call.target()}: {owners}; re-run with "
                         "--force-conflicts to take these fields over, or drop them from "
                         "your file")


def _causes(body: Mapping[str, Any]) -> str:
    causes = (body.get("details") or {}).get("causes") or []
    parts = [f"{c.get('field', '')}: {' '.join(str(c.get('message', '')).split())}".lstrip(": ")
             for c in causes if isinstance(c, dict)]
    return "; ".join(parts)


# ---- reading the inventory --------------------------------------------------------------------

def api_for(scope: Scope) -> Api:
    return Api(access_for(scope))


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def load_live_inventory(scope: Scope, query: TargetQuery | None = None,
                        namespaces: Iterable[str] | None = None,
                        api: Api | None = None) -> Inventory:
    """Mesh config, SidecarProxyConfigs and targets from the cluster.

    Reads only what the query needs: `-A` lists cluster-wide, otherwise the namespace
    (or `namespaces`) plus the mesh root namespace for the global configs; a named
    target is one GET. Independent lists run concurrently.
    """
    api = api or api_for(scope)
    wanted: list[str] | None
    if scope.all_namespaces:
        wanted = None
    elif namespaces is not None:
        wanted = sorted(set(namespaces))
    else:
        wanted = [current_namespace(scope)]
    istio_ns = scope.istio_namespace
    guess_root = scope.root_namespace or istio_ns
    with ThreadPoolExecutor(max_workers=8) as pool:
        mesh_f = pool.submit(api.get, Call("get", CONFIGMAPS, istio_ns, model.MESH_CONFIGMAP),
                             True)
        config_fs = _list_configs(pool, api, wanted, [guess_root])
        target_fs = _target_futures(pool, api, query, wanted)
        mesh = _parse_mesh(mesh_f.result(), istio_ns)
        root = scope.root_namespace or (mesh.root_namespace if mesh else istio_ns)
        if wanted is not None and root != guess_root and root not in wanted:
            config_fs += _list_configs(pool, api, [], [root])
        config_docs = _results(config_fs)
        target_docs = _results(target_fs)
        if query is None and wanted == [root]:
            # `get -n <root>`: a global object's matched pods are in every namespace.
            target_docs = _with_all_pods(api, target_docs, root)
    inventory = Inventory(mesh=mesh)
    seen: set[tuple[str, str]] = set()
    for doc in config_docs:
        meta = doc.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        if key in seen:
            continue
        seen.add(key)
        config = _parse_or_warn(model.parse_config, doc)
        if config is not None:
            inventory.configs.append(config)
    for doc in target_docs:
        target = _parse_or_warn(model.parse_target, doc)
        if target is not None:
            inventory.targets.append(target)
    return inventory


def _list_configs(pool: ThreadPoolExecutor, api: Api, wanted: list[str] | None,
                  extra: list[str]) -> list[Future[list[dict[str, Any]]]]:
    if wanted is None:
        return [pool.submit(api.list, SIDECAR_CONFIGS, None)]
    return [pool.submit(api.list, SIDECAR_CONFIGS, ns) for ns in dict.fromkeys(wanted + extra)]


def _target_futures(pool: ThreadPoolExecutor, api: Api, query: TargetQuery | None,
                    wanted: list[str] | None) -> list[Future[list[dict[str, Any]]]]:
    kinds = list(TARGET_RESOURCES)
    if query is not None and query.kind is not None:
        kinds = [query.kind]
        if query.name is not None and wanted is not None:
            resource = TARGET_RESOURCES[query.kind]
            return [pool.submit(_get_one, api, resource, ns, query.name) for ns in wanted]
    namespaces: list[str | None] = [None] if wanted is None else list(wanted)
    futures = []
    for kind in kinds:
        resource = TARGET_RESOURCES[kind]
        for ns in namespaces:
            futures.append(pool.submit(_typed_list, api, resource, ns))
    return futures


def _with_all_pods(api: Api, docs: list[dict[str, Any]], root: str) -> list[dict[str, Any]]:
    try:
        pods = _typed_list(api, TARGET_RESOURCES["Pod"], None)
    except Forbidden:
        warn(f"cannot list pods in every namespace: the PODS of global objects count "
             f"namespace {root} only")
        return docs
    return [d for d in docs if d["kind"] != "Pod"] + pods


def _get_one(api: Api, resource: Resource, namespace: str, name: str) -> list[dict[str, Any]]:
    doc = api.get(Call("get", resource, namespace, name), missing_ok=True)
    return [_typed(doc, resource)] if doc else []


def _typed_list(api: Api, resource: Resource, namespace: str | None) -> list[dict[str, Any]]:
    return [_typed(doc, resource) for doc in api.list(resource, namespace)]


def _typed(doc: dict[str, Any], resource: Resource) -> dict[str, Any]:
    """List items carry no kind/apiVersion; put them back."""
    doc["kind"] = resource.kind
    doc["apiVersion"] = (f"{resource.group}/{resource.version}" if resource.group
                         else resource.version)
    return doc


def _results(futures: list[Future[list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for future in futures:
        out += future.result()
    return out


def _parse_mesh(doc: Mapping[str, Any] | None, istio_ns: str) -> model.MeshConfig | None:
    if doc is None:
        return None
    try:
        return model.parse_mesh_config(doc, CLUSTER, istio_ns)
    except InvalidInput as invalid:
        for location, reason in invalid.problems:
            warn(f"ignoring the mesh config: {location.describe()}: {reason}")
        return None


def _parse_or_warn(parse: Callable[..., Any], doc: Mapping[str, Any]) -> Any:
    try:
        return parse(doc, CLUSTER, "default")
    except InvalidInput as invalid:
        for location, reason in invalid.problems:
            warn(f"skipping {model.describe_object(doc)} (invalid in the cluster): "
                 f"{location.field or ''}: {reason}".replace(" : ", " "))
        return None


# ---- writing ----------------------------------------------------------------------------------

_SERVER_SET = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation",
               "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds")


def apply_body(doc: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """The apply patch for a document: its namespace set, server-set metadata dropped (so the
    output of `get -o yaml` can be applied back), status dropped."""
    body = {k: v for k, v in doc.items() if k != "status"}
    meta = {k: v for k, v in (doc.get("metadata") or {}).items() if k not in _SERVER_SET}
    meta["namespace"] = namespace
    body["metadata"] = meta
    return body


def server_side_apply(api: Api, doc: Mapping[str, Any], namespace: str, name: str,
                      field_manager: str, force: bool, dry_run: bool) -> dict[str, Any]:
    """PATCH with application/apply-patch+yaml (JSON is YAML)."""
    query = {"fieldManager": field_manager}
    if force:
        query["force"] = "true"
    if dry_run:
        query["dryRun"] = "All"
    call = Call("patch", SIDECAR_CONFIGS, namespace, name)
    body = json.dumps(apply_body(doc, namespace)).encode()
    result = api.request("PATCH", call, SIDECAR_CONFIGS.path(namespace, name), query, body,
                         "application/apply-patch+yaml")
    return dict(result)


def delete_config(api: Api, namespace: str, name: str, dry_run: bool,
                  missing_ok: bool = False) -> bool:
    """DELETE one SidecarProxyConfig; False when it was not there and missing_ok."""
    query = {"dryRun": "All"} if dry_run else None
    call = Call("delete", SIDECAR_CONFIGS, namespace, name)
    options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1",
                               "propagationPolicy": "Background"}
    if dry_run:   # a DELETE body's options replace the query's: say it in both
        options["dryRun"] = ["All"]
    body = json.dumps(options).encode()
    result = api.request("DELETE", call, SIDECAR_CONFIGS.path(namespace, name), query, body,
                         "application/json", missing_ok=missing_ok)
    return result is not None


def check_crd(api: Api) -> None:
    """Raise CrdMissing when the API group/version is not served."""
    call = Call("list", SIDECAR_CONFIGS)
    found = api.request("GET", call, f"/apis/{model.API_VERSION}", missing_ok=True)
    if found is None or not any(r.get("name") == SIDECAR_CONFIGS.plural
                                for r in found.get("resources") or []):
        raise CrdMissing(f"error: the cluster has no {model.KIND} resource (CRD {CRD_NAME} is "
                         f"not installed): {CRD_HINT}")
