"""rollout-test: restart a workload under load and report what its clients saw.

A load generator pod sends requests to the workload's Service (its cluster IP), or
straight to the ready endpoints of the Service's EndpointSlices (`--via endpoints`, for
clusters where nothing routes Service IPs, or to take kube-proxy out of the picture: the
command keeps the generator's target list up to date through its pod's annotations). The
workload restarts (rollout restart, or its pods deleted or evicted one at a time), the
command watches the old pods until they are gone, then stops the generator, reads its log
and the Events, and builds the report (core/rollout.py). The generator pod is deleted
whatever happens; Ctrl-C and SIGTERM included.
"""

from __future__ import annotations

import contextlib
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..core import kinds, loadgen, rollout
from ..core.errors import MeshcfgError, UsageError
from ..kube import rollout as api_rollout
from ..kube import writes
from .scope import Scope, current_namespace

KINDS = ("Deployment", "StatefulSet", "DaemonSet")
POLL = 0.25          # seconds between looks at a condition the API has no watch for here
Progress = Callable[[str], None]


@dataclass(frozen=True)
class RolloutTestOptions:
    target: tuple[str, ...]
    method: str = "restart"
    via: str = "auto"
    service: str | None = None
    port: str | None = None
    load: rollout.Load = rollout.Load()
    timeout: float = 600.0
    yes: bool = False


class RolloutTimeout(MeshcfgError):
    pass


def parse_target(target: tuple[str, ...]) -> tuple[str, str]:
    """TYPE/NAME or TYPE NAME, of a kind that rolls out."""
    words = target[0].split("/", 1) if len(target) == 1 else list(target)
    if len(words) != 2 or not all(words):
        raise UsageError("rollout-test takes one workload: TYPE/NAME (deployment, statefulset "
                         "or daemonset)")
    kind = kinds.lookup(words[0])
    if kind is None or kind.name not in KINDS:
        raise UsageError(f'rollout-test cannot restart "{words[0]}": give a deployment, '
                         "statefulset or daemonset")
    return kind.name, words[1]


class _Deadline:
    def __init__(self, seconds: float, what: str) -> None:
        self.end, self.what = time.monotonic() + seconds, what

    def left(self) -> float:
        return self.end - time.monotonic()

    def wait_for(self, condition: Callable[[], Any], what: str) -> Any:
        while not (value := condition()):
            if self.left() <= 0:
                raise RolloutTimeout(f"error: timed out ({self.what}) waiting for {what}")
            time.sleep(POLL)
        return value


class _PodLog:
    """Every state the watch delivers for the old pods (uid -> what was seen), and when
    each new pod was first seen serving."""

    def __init__(self, old: set[str]) -> None:
        self.lock = threading.Lock()
        self.seen: dict[str, list[rollout.Seen]] = {uid: [] for uid in old}
        self.serving_since: dict[str, float] = {}

    def __call__(self, kind: str, pod: dict[str, Any], at: float) -> None:
        uid = str((pod.get("metadata") or {}).get("uid"))
        with self.lock:
            if uid in self.seen:
                self.seen[uid].append(rollout.Seen(at, kind, pod))
            elif kind != "DELETED" and rollout.serving(pod):
                name = str((pod.get("metadata") or {}).get("name"))
                self.serving_since.setdefault(name, at)

    def gone(self) -> bool:
        with self.lock:
            return all(any(s.kind == "DELETED" for s in seen) for seen in self.seen.values())


class _Endpoints:
    """Keeps the generator's targets equal to the Service's ready endpoints."""

    def __init__(self, scope: Scope, namespace: str, port: Mapping[str, Any]) -> None:
        self.scope, self.namespace, self.port = scope, namespace, port
        self.slices: dict[str, dict[str, Any]] = {}
        self.targets: list[str] = []
        self.generator = ""
        self.lock = threading.Lock()

    def __call__(self, kind: str, eps: dict[str, Any], _at: float) -> None:
        name = str((eps.get("metadata") or {}).get("name"))
        with self.lock:
            if kind == "DELETED":
                self.slices.pop(name, None)
            else:
                self.slices[name] = eps
            targets = rollout.ready_endpoints(self.slices.values(), self.port)
            changed, self.targets = targets != self.targets, targets
            if changed and self.generator:
                api_rollout.annotate_pod(self.scope.api, self.namespace, self.generator,
                                     {loadgen.TARGETS: ",".join(targets)})


def run(scope: Scope, options: RolloutTestOptions, progress: Progress) -> dict[str, Any]:
    namespace = current_namespace(scope)
    kind, name = parse_target(options.target)
    api = scope.api
    workload = api_rollout.get_workload(api, kind, namespace, name)
    ready = rollout.ready_replicas(kind, workload)
    if ready < 2 and not options.yes:
        raise UsageError(f"{kind.lower()}/{name} in namespace {namespace} has {ready} ready "
                         f"replica{'' if ready == 1 else 's'}: restarting it fails requests "
                         "whatever the drain does; re-run with --yes to test it anyway")
    selector = rollout.selector_text(workload)
    if not selector:
        raise MeshcfgError(f"error: {kind.lower()}/{name} has no spec.selector")
    labels = kinds.BY_NAME[kind].template_of(workload).get("metadata", {}).get("labels") or {}
    via, service, port = _choose_service(scope, namespace, labels, options)
    pods, version = api_rollout.list_pods(api, namespace, selector)
    old = {str(p["metadata"]["uid"]): p for p in pods if not p["metadata"].get("deletionTimestamp")}
    watched = _PodLog(set(old))
    for uid, pod in old.items():
        watched.seen[uid].append(rollout.Seen(time.time(), "LISTED", pod))
    deadline = _Deadline(options.timeout, f"--timeout {options.timeout:g}s")
    run_id = secrets.token_hex(4)
    generator = f"meshcfg-rollout-test-{run_id}"
    endpoints = _Endpoints(scope, namespace, port) if via == "endpoints" else None
    watches: list[api_rollout.Watch] = []
    with _cleanup(scope, namespace, generator, watches):
        watches.append(api_rollout.Watch(api, api_rollout.PODS, namespace,
                                         {"labelSelector": selector}, watched).start(version, pods))
        targets = _initial_targets(scope, namespace, service, port, endpoints, watches)
        progress(f"starting the load generator pod {generator} ({len(targets)} target"
                 f"{'' if len(targets) == 1 else 's'} via {via})")
        pod = rollout.generator_pod(generator, namespace, run_id, options.load, targets,
                                    int(options.timeout) + 60)
        api_rollout.create_pod(api, pod)
        if endpoints is not None:
            with endpoints.lock:
                endpoints.generator = generator
            _push_targets(scope, namespace, endpoints, targets)
        deadline.wait_for(lambda: _sending(scope, namespace, generator),
                          f"the load generator {generator} to send requests")
        t0 = time.time()
        progress(f"restarting {kind.lower()}/{name} ({options.method})")
        _restart(scope, kind, namespace, name, options.method, list(old.values()), deadline,
                 selector)
        deadline.wait_for(lambda: rollout.rolled_out(kind, api_rollout.get_workload(
            api, kind, namespace, name)), f"{kind.lower()}/{name} to roll out")
        rolled = time.time()
        progress("rolled out; waiting for the old pods to go away")
        deadline.wait_for(lambda: _watch_error(watches) or watched.gone(),
                          "the old pods to go away")
        progress("stopping the load generator")
        log = _stop_generator(scope, namespace, generator, options.load)
        events = api_rollout.list_events(api, namespace)
    via_info = {"mode": via, "service": service["metadata"]["name"],
                "port": port.get("name") or port.get("port"), "targets": targets}
    return rollout.report(rollout.Run(
        {"kind": kind, "name": name, "namespace": namespace}, options.method, via_info,
        options.load, t0, rolled, rollout.parse_log(log), watched.seen, events,
        watched.serving_since))


def _watch_error(watches: list[api_rollout.Watch]) -> bool:
    for watch in watches:
        if watch.error is not None:
            raise watch.error
    return False


def _choose_service(scope: Scope, namespace: str, labels: Mapping[str, str],
                    options: RolloutTestOptions) -> tuple[str, dict[str, Any], dict[str, Any]]:
    api = scope.api
    if options.service:
        service = api_rollout.get_service(api, namespace, options.service)
    else:
        found = rollout.services_for(api_rollout.list_services(api, namespace), labels)
        if not found:
            raise MeshcfgError(f"error: no Service in namespace {namespace} selects the "
                               "workload's pods: rollout-test sends its requests through one")
        if len(found) > 1:
            names = ", ".join(sorted(s["metadata"]["name"] for s in found))
            raise UsageError(f"several Services select the workload's pods ({names}): "
                             "choose one with --service")
        service = dict(found[0])
    port = rollout.service_port(service, options.port)
    if port is None:
        raise UsageError(f'service/{service["metadata"]["name"]} has no port '
                         f'"{options.port or ""}"'.replace(' ""', ""))
    headless = (service.get("spec") or {}).get("clusterIP") in (None, "", "None")
    via = options.via
    if via == "auto":
        via = "endpoints" if headless else "service"
    if via == "service" and headless:
        raise UsageError(f"service/{service['metadata']['name']} is headless: use --via endpoints")
    return via, service, dict(port)


def _initial_targets(scope: Scope, namespace: str, service: Mapping[str, Any],
                     port: Mapping[str, Any], endpoints: _Endpoints | None,
                     watches: list[api_rollout.Watch]) -> list[str]:
    if endpoints is None:
        ip = service["spec"]["clusterIP"]
        host = f"[{ip}]" if ":" in ip else ip
        return [f"{host}:{port['port']}"]
    name = service["metadata"]["name"]
    query = {"labelSelector": f"{api_rollout.SERVICE_NAME_LABEL}={name}"}
    slices, version = api_rollout.list_with_version(scope.api, api_rollout.ENDPOINT_SLICES,
                                                    namespace, query)
    for eps in slices:
        endpoints("ADDED", eps, time.time())
    watches.append(api_rollout.Watch(scope.api, api_rollout.ENDPOINT_SLICES, namespace, query,
                                     endpoints).start(version, slices))
    with endpoints.lock:
        targets = list(endpoints.targets)
    if not targets:
        raise MeshcfgError(f"error: service/{name} has no ready endpoint on port "
                           f"{port.get('name') or port.get('port')}")
    return targets


def _push_targets(scope: Scope, namespace: str, endpoints: _Endpoints, sent: list[str]) -> None:
    """Endpoints that changed between the pod's creation and the generator taking effect."""
    with endpoints.lock:
        if endpoints.targets != sent:
            api_rollout.annotate_pod(scope.api, namespace, endpoints.generator,
                                     {loadgen.TARGETS: ",".join(endpoints.targets)})


def _sending(scope: Scope, namespace: str, generator: str) -> bool:
    pod = api_rollout.get_pod(scope.api, namespace, generator)
    state = _load_state(pod)
    if "terminated" in state or ((pod or {}).get("status") or {}).get("phase") == "Failed":
        log = _log_or_empty(scope, namespace, generator)
        raise MeshcfgError(f"error: the load generator pod {generator} stopped before sending "
                           f"({_exit_reason(state)}): {' '.join(log.split())[-300:]}")
    waiting = state.get("waiting") or {}
    if waiting.get("reason") in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName",
                                 "CreateContainerConfigError", "CreateContainerError"):
        raise MeshcfgError(f"error: the load generator pod {generator} cannot start: "
                           f"{waiting.get('reason')}: {waiting.get('message', '')} "
                           "(choose another image with --image)")
    if "running" not in state:
        return False
    return '"event": "sending"' in _log_or_empty(scope, namespace, generator)


def _load_state(pod: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The generator container's state (running, waiting, terminated), {} before any."""
    statuses = ((pod or {}).get("status") or {}).get("containerStatuses") or []
    return (statuses[0].get("state") or {}) if statuses else {}


def _exit_reason(state: Mapping[str, Any]) -> str:
    term = state.get("terminated") or {}
    return f"exit {term.get('exitCode')}, {term.get('reason')}" if term else "failed"


def _log_or_empty(scope: Scope, namespace: str, generator: str) -> str:
    try:
        return api_rollout.pod_log(scope.api, namespace, generator, "load")
    except MeshcfgError:
        return ""


def _restart(scope: Scope, kind: str, namespace: str, name: str, method: str,
             old: list[dict[str, Any]], deadline: _Deadline, selector: str) -> None:
    api = scope.api
    if method == "restart":
        writes.restart_workload(api, kind, namespace, name)
        return
    old_names = {p["metadata"]["name"] for p in old}
    for pod in sorted(old_names):
        _stop_one(scope, namespace, pod, method, deadline)
        deadline.wait_for(lambda: _replaced(scope, kind, namespace, name, selector),
                          f"a replacement of pod {pod} to be ready")


def _stop_one(scope: Scope, namespace: str, pod: str, method: str, deadline: _Deadline) -> None:
    if method == "evict":
        deadline.wait_for(lambda: api_rollout.evict_pod(scope.api, namespace, pod),
                          f"an eviction of pod {pod} that its PodDisruptionBudget allows")
    else:
        api_rollout.delete_pod(scope.api, namespace, pod)


def _replaced(scope: Scope, kind: str, namespace: str, name: str, selector: str) -> bool:
    """As many serving pods as the workload wants (a pod being deleted does not serve)."""
    workload = api_rollout.get_workload(scope.api, kind, namespace, name)
    pods, _ = api_rollout.list_pods(scope.api, namespace, selector)
    return sum(1 for p in pods if rollout.serving(p)) >= rollout.desired_replicas(kind, workload)


def _stop_generator(scope: Scope, namespace: str, generator: str, load: rollout.Load) -> str:
    api_rollout.annotate_pod(scope.api, namespace, generator, {loadgen.STOP: "true"})
    stop = _Deadline(load.request_timeout + 30, "the load generator's last requests")

    def finished() -> bool:
        pod = api_rollout.get_pod(scope.api, namespace, generator)
        return pod is None or "terminated" in _load_state(pod)

    stop.wait_for(finished, f"the load generator {generator} to finish its requests")
    return api_rollout.pod_log(scope.api, namespace, generator, "load")


@contextlib.contextmanager
def _cleanup(scope: Scope, namespace: str, generator: str,
             watches: list[api_rollout.Watch]) -> Iterator[None]:
    """Delete the generator pod on the way out, however the run ends (SIGTERM is turned
    into KeyboardInterrupt, as Ctrl-C; a second one cannot interrupt the cleanup)."""
    previous_int, previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        if in_main:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            for watch in watches:
                watch.stop()
            with contextlib.suppress(MeshcfgError):
                api_rollout.delete_pod(scope.api, namespace, generator, grace=0)
        finally:
            if in_main:
                signal.signal(signal.SIGINT, previous_int)
                signal.signal(signal.SIGTERM, previous)


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt
