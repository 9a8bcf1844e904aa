"""What `rollout-test` asks of the API: the workload, its pods, Services and EndpointSlices,
Events, the load generator's pod (create, annotate, log, delete), evictions, and watches."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from . import resources
from .errors import ApiError
from .resources import Call, Resource
from .transport import Api

PODS = resources.TARGET_RESOURCES["Pod"]
SERVICES = Resource("Service", "", "v1", "services")
EVENTS = Resource("Event", "", "v1", "events")
ENDPOINT_SLICES = Resource("EndpointSlice", "discovery.k8s.io", "v1", "endpointslices")
EVICTIONS = Resource("Eviction", "policy", "v1", "evictions")
POD_LOGS = Resource("Pod", "", "v1", "pods/log")
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MERGE_PATCH = "application/merge-patch+json"


def get_workload(api: Api, kind: str, namespace: str, name: str) -> dict[str, Any]:
    resource = resources.TARGET_RESOURCES[kind]
    return dict(api.get(Call("get", resource, namespace, name)))


def list_pods(api: Api, namespace: str, selector: str) -> tuple[list[dict[str, Any]], str]:
    """The pods and the list's resourceVersion (where a watch starts)."""
    return list_with_version(api, PODS, namespace, {"labelSelector": selector})


def list_services(api: Api, namespace: str) -> list[dict[str, Any]]:
    return api.list(SERVICES, namespace)


def get_service(api: Api, namespace: str, name: str) -> dict[str, Any]:
    return dict(api.get(Call("get", SERVICES, namespace, name)))


def list_events(api: Api, namespace: str) -> list[dict[str, Any]]:
    return api.list(EVENTS, namespace)


def list_with_version(api: Api, resource: Resource, namespace: str,
          query: Mapping[str, str]) -> tuple[list[dict[str, Any]], str]:
    page = api.request("GET", Call("list", resource, namespace), resource.path(namespace), query)
    return list(page.get("items") or []), str((page.get("metadata") or {}).get("resourceVersion"))


def create_pod(api: Api, pod: Mapping[str, Any]) -> dict[str, Any]:
    namespace = pod["metadata"]["namespace"]
    call = Call("create", PODS, namespace, pod["metadata"]["name"])
    return dict(api.request("POST", call, PODS.path(namespace), None,
                            json.dumps(pod).encode(), "application/json"))


def get_pod(api: Api, namespace: str, name: str) -> dict[str, Any] | None:
    found = api.get(Call("get", PODS, namespace, name), missing_ok=True)
    return None if found is None else dict(found)


def annotate_pod(api: Api, namespace: str, name: str, annotations: Mapping[str, str]) -> None:
    patch = {"metadata": {"annotations": dict(annotations)}}
    api.request("PATCH", Call("patch", PODS, namespace, name), PODS.path(namespace, name), None,
                json.dumps(patch).encode(), MERGE_PATCH)


def delete_pod(api: Api, namespace: str, name: str, grace: int | None = None) -> bool:
    """DELETE a pod; False when it was already gone."""
    options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
    if grace is not None:
        options["gracePeriodSeconds"] = grace
    result = api.request("DELETE", Call("delete", PODS, namespace, name),
                         PODS.path(namespace, name), None, json.dumps(options).encode(),
                         "application/json", missing_ok=True)
    return result is not None


def evict_pod(api: Api, namespace: str, name: str) -> bool:
    """POST an Eviction; False when a PodDisruptionBudget refuses it for now (429)."""
    body = {"apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace}}
    try:
        api.request("POST", Call("create", EVICTIONS, namespace, name),
                    PODS.path(namespace, name) + "/eviction", None, json.dumps(body).encode(),
                    "application/json")
    except ApiError as error:
        if error.status == 429:
            return False
        raise
    return True


def pod_log(api: Api, namespace: str, name: str, container: str) -> str:
    return api.text(Call("get", POD_LOGS, namespace, name), PODS.path(namespace, name) + "/log",
                    {"container": container})


OnEvent = Callable[[str, dict[str, Any], float], None]


class Watch:
    """A watch of one resource in a namespace on its own thread: `on_event(type, object,
    arrival time)` for every change, in order, from `resource_version` on. A watch the
    server ends is resumed from the last version seen; a version too old (410) is
    replaced by a fresh list, each listed object delivered as MODIFIED and each known
    object missing from it as DELETED (it went away during the gap)."""

    def __init__(self, api: Api, resource: Resource, namespace: str, query: Mapping[str, str],
                 on_event: OnEvent) -> None:
        self.api, self.resource, self.namespace = api, resource, namespace
        self.query, self.on_event = dict(query), on_event
        self.error: Exception | None = None
        self._stop = threading.Event()
        self._response: Any = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._known: dict[str, dict[str, Any]] = {}

    def start(self, resource_version: str, listed: Iterable[Mapping[str, Any]] = ()) -> Watch:
        """Watch from `resource_version`, the version of the list that gave `listed`."""
        self._known = {_key(obj): dict(obj) for obj in listed}
        self._thread = threading.Thread(target=self._run, args=(resource_version,),
                                        name=f"watch-{self.resource.plural}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            if self._response is not None:
                self._response.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self, version: str) -> None:
        try:
            while not self._stop.is_set():
                version = self._once(version)
        except Exception as error:  # noqa: BLE001 (reported by the owner after stop)
            if not self._stop.is_set():
                self.error = error

    def _once(self, version: str) -> str:
        query = {**self.query, "watch": "true", "resourceVersion": version,
                 "allowWatchBookmarks": "true", "timeoutSeconds": "300"}
        response = self.api.open_stream(Call("watch", self.resource, self.namespace),
                                        self.resource.path(self.namespace), query)
        with self._lock:
            self._response = response
        if self._stop.is_set():
            response.shutdown()
        try:
            for line in _lines(response):
                version = self._deliver(json.loads(line), version)
        finally:
            with self._lock:
                self._response = None
            response.release_conn()
        return version

    def _deliver(self, event: Mapping[str, Any], version: str) -> str:
        kind, obj = str(event.get("type")), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                return self._relist()
            raise ApiError(f"error: watch of {self.resource.qualified} in namespace "
                           f"{self.namespace} failed: {obj.get('message')}")
        version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
        if kind != "BOOKMARK":
            self._remember(kind, obj)
            self.on_event(kind, dict(obj), time.time())
        return version

    def _remember(self, kind: str, obj: Mapping[str, Any]) -> None:
        if kind == "DELETED":
            self._known.pop(_key(obj), None)
        else:
            self._known[_key(obj)] = dict(obj)

    def _relist(self) -> str:
        items, version = list_with_version(self.api, self.resource, self.namespace, self.query)
        now = time.time()
        listed = {_key(item) for item in items}
        for key in sorted(set(self._known) - listed):
            self.on_event("DELETED", self._known.pop(key), now)
        for item in items:
            self._remember("MODIFIED", item)
            self.on_event("MODIFIED", item, now)
        return version


def _key(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("uid") or metadata.get("name"))


def _lines(response: Any) -> Any:
    """The lines of a streamed body as they arrive."""
    pending = b""
    while True:
        chunk = response.read1(65536)
        if not chunk:
            if pending.strip():
                yield pending
            return
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            if line.strip():
                yield line
