"""`rollout-test`, the pure part: the load generator's pod, what its log says, each old
pod's termination timeline from what the API showed (watched pod states, Events), and the
report with its verdict. Times are epoch seconds; the report gives them as offsets from the
moment the restart began (`t0`)."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import loadgen

KIND = "RolloutTestReport"
API_VERSION = "meshcfg.io/v1alpha1"
LABEL = "meshcfg.io/rollout-test"
DRAIN_COMPONENT = "meshcfg-drain"
SIGKILL_EXIT, SIGTERM_EXIT = 137, 143


@dataclass(frozen=True)
class Load:
    """What the generator sends: GET `path` from `workers` workers, at most `rate` a second."""

    path: str = "/"
    workers: int = 4
    rate: float = 20.0
    request_timeout: float = 60.0
    image: str = "docker.io/library/python:3.13-alpine"
    node: str | None = None          # spec.nodeName of the generator (None: the scheduler's)


def generator_pod(name: str, namespace: str, run_id: str, load: Load, targets: Sequence[str],
                  deadline_seconds: int) -> dict[str, Any]:
    """The load generator's pod: no sidecar (plain HTTP to the targets), unprivileged,
    read-only, bounded by activeDeadlineSeconds even if the command dies unseen."""
    annotations = {loadgen.TARGETS: ",".join(targets), "sidecar.istio.io/inject": "false"}
    command = ["python3", "-u", "-c", loadgen.GENERATOR, loadgen.ANNOTATIONS_FILE, load.path,
               str(load.workers), f"{load.rate:g}", f"{load.request_timeout:g}"]
    security = {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534,
                "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]}}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations,
                     "labels": {LABEL: run_id, "sidecar.istio.io/inject": "false",
                                "app.kubernetes.io/name": "meshcfg-rollout-test"}},
        "spec": {
            "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
            "activeDeadlineSeconds": deadline_seconds, "automountServiceAccountToken": False,
            "enableServiceLinks": False, **({"nodeName": load.node} if load.node else {}),
            "containers": [{"name": "load", "image": load.image, "command": command,
                            "env": [{"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}],
                            "securityContext": security,
                            "resources": {"requests": {"cpu": "50m", "memory": "32Mi"},
                                          "limits": {"memory": "128Mi"}},
                            "volumeMounts": [{"name": "annotations", "readOnly": True,
                                              "mountPath": loadgen.ANNOTATIONS_DIR}]}],
            "volumes": [{"name": "annotations", "downwardAPI": {"items": [{
                "path": "annotations",
                "fieldRef": {"fieldPath": "metadata.annotations"}}]}}]}}


# ------------------------------------------------------------------ the generator's log


@dataclass(frozen=True)
class Request:
    start: float
    end: float
    target: str
    status: str

    @property
    def ok(self) -> bool:
        return self.status.isdigit() and int(self.status) < 500


@dataclass
class GeneratorLog:
    requests: list[Request] = field(default_factory=list)
    events: dict[str, float] = field(default_factory=dict)   # started, sending, done, ...
    other: list[str] = field(default_factory=list)            # lines that are not ours


def parse_log(text: str) -> GeneratorLog:
    out = GeneratorLog()
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            if line.strip():
                out.other.append(line)
            continue
        if not isinstance(record, dict):
            out.other.append(line)
        elif "event" in record:
            out.events[str(record["event"])] = float(record.get("time") or 0.0)
        elif {"start", "end", "status"} <= record.keys():
            out.requests.append(Request(float(record["start"]), float(record["end"]),
                                        str(record.get("target", "")), str(record["status"])))
        else:
            out.other.append(line)
    return out


def request_counts(requests: Sequence[Request], t0: float) -> dict[str, Any]:
    """Sent, succeeded, failed; by status; and by second (from t0) of each request's end,
    with the seconds in which requests started."""
    by_status = Counter(r.status for r in requests)
    seconds: dict[int, Counter[str]] = {}
    for r in requests:
        seconds.setdefault(math.floor(r.start - t0), Counter())["sent"] += 1
        ended = seconds.setdefault(math.floor(r.end - t0), Counter())
        ended["succeeded" if r.ok else "failed"] += 1
    failed = sum(1 for r in requests if not r.ok)
    return {
        "sent": len(requests), "succeeded": len(requests) - failed, "failed": failed,
        "byStatus": dict(sorted(by_status.items())),
        "bySecond": [{"second": s, "sent": c["sent"], "succeeded": c["succeeded"],
                      "failed": c["failed"]} for s, c in sorted(seconds.items())],
        "failures": [{"start": round(r.start - t0, 3), "end": round(r.end - t0, 3),
                      "target": r.target, "status": r.status} for r in requests if not r.ok],
    }


# ------------------------------------------------------------------ timelines


def parse_time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def event_time(event: Mapping[str, Any], since: float | None = None) -> float | None:
    """An Event's time: eventTime (microseconds) when set, else its first timestamp (whole
    seconds); for an Event repeated since `since`, its last time."""
    exact = parse_time(event.get("eventTime"))
    if exact is not None:
        return exact
    first = parse_time(event.get("firstTimestamp"))
    last = parse_time(event.get("lastTimestamp")) or first
    if first is None:
        return parse_time((event.get("metadata") or {}).get("creationTimestamp"))
    if since is not None and last is not None and first < math.floor(since) <= last:
        return last
    return first


def during(events: Iterable[Mapping[str, Any]], t0: float) -> list[Mapping[str, Any]]:
    """The Events that happened (or happened again) from t0 on; timestamps in whole
    seconds count from t0's second."""
    out = []
    for ev in events:
        times = [parse_time(ev.get(k)) for k in ("eventTime", "lastTimestamp", "firstTimestamp")]
        known = [t for t in times if t is not None]
        if known and max(known) >= math.floor(t0):
            out.append(ev)
    return out


@dataclass(frozen=True)
class Seen:
    """One state of a pod as the watch delivered it, at the command's clock."""

    at: float
    kind: str                       # ADDED, MODIFIED, DELETED
    pod: Mapping[str, Any]


def _entry(t: float | None, t0: float, what: str, source: str,
           exact: bool = True) -> dict[str, Any]:
    return {"at": None if t is None else round(t - t0, 3), "time": None if t is None else iso(t),
            "what": what, "source": source, "precision": "ms" if exact else "s"}


def _deletion(pod: Mapping[str, Any]) -> tuple[float | None, int | None]:
    meta = pod.get("metadata") or {}
    deadline = parse_time(meta.get("deletionTimestamp"))
    grace = meta.get("deletionGracePeriodSeconds")
    if deadline is None:
        return None, None
    return (deadline - grace if isinstance(grace, int) else deadline), grace


def _prestop_containers(pod: Mapping[str, Any]) -> set[str]:
    spec = pod.get("spec") or {}
    return {c.get("name", "") for c in [*(spec.get("initContainers") or []),
                                       *(spec.get("containers") or [])]
            if (c.get("lifecycle") or {}).get("preStop")}


def _terminations(seen: Sequence[Seen], t0: float) -> dict[str, Mapping[str, Any]]:
    """Each container's last `terminated` state the watch saw, from t0's second on (init
    containers that ended at the pod's start are not part of its termination)."""
    found: dict[str, Mapping[str, Any]] = {}
    for one in seen:
        status = one.pod.get("status") or {}
        for cs in [*(status.get("initContainerStatuses") or []),
                   *(status.get("containerStatuses") or [])]:
            terminated = (cs.get("state") or {}).get("terminated")
            finished = parse_time((terminated or {}).get("finishedAt"))
            if terminated and (finished is None or finished >= math.floor(t0)):
                found[str(cs.get("name"))] = terminated
    return found


def _exit_entries(name: str, term: Mapping[str, Any], t0: float) -> list[dict[str, Any]]:
    code = term.get("exitCode")
    at = parse_time(term.get("finishedAt"))
    source = f"status.containerStatuses[{name}].state.terminated"
    if code == SIGKILL_EXIT:
        return [_entry(at, t0, f"{name}: SIGKILL (exit 137, {term.get('reason', '')})", source,
                       exact=False)]
    how = " on SIGTERM" if code == SIGTERM_EXIT else ""
    return [_entry(at, t0, f"{name}: exited{how} (exit {code}, {term.get('reason', '')})",
                   source, exact=False)]


def _event_entries(pod: Mapping[str, Any], events: Sequence[Mapping[str, Any]], t0: float,
                   prestop: set[str]) -> list[dict[str, Any]]:
    out = []
    for ev in events:
        t = event_time(ev, t0)
        reason = str(ev.get("reason", ""))
        component = str((ev.get("source") or {}).get("component")
                        or ev.get("reportingComponent") or "")
        container = _container_of(ev)
        exact = bool(ev.get("eventTime"))
        source = f"Event {reason} ({component or 'unknown'})"
        message = " ".join(str(ev.get("message", "")).split())
        if reason == "Killing" and container:
            what = (f"{container}: preStop hook starts (SIGTERM after it)" if container in prestop
                    else f"{container}: SIGTERM")
            out.append(_entry(t, t0, what, source, exact))
        elif component == DRAIN_COMPONENT:
            out.append(_entry(t, t0, f"{reason}: {message}", source, exact))
            if reason != "DrainStarted":
                out.append(_entry(t, t0, f"{container or 'istio-proxy'}: preStop hook ends, "
                                  "SIGTERM", source, exact))
        elif ev.get("type") == "Warning":
            out.append(_entry(t, t0, f"warning {reason}: {message}", source, exact))
    return out


def _container_of(event: Mapping[str, Any]) -> str:
    path = str((event.get("involvedObject") or {}).get("fieldPath") or "")
    if "{" in path and path.endswith("}"):
        return path[path.index("{") + 1:-1]
    return ""


def pod_timeline(seen: Sequence[Seen], events: Sequence[Mapping[str, Any]],
                 t0: float) -> dict[str, Any]:
    """One old pod's termination as the API showed it, in time order."""
    last = seen[-1].pod
    meta = last.get("metadata") or {}
    deleted_at, grace = _first_deletion(seen)
    entries = []
    if deleted_at is not None:
        entries.append(_entry(deleted_at, t0, f"deleted (grace period {grace}s)",
                              "metadata.deletionTimestamp - deletionGracePeriodSeconds",
                              exact=False))
    entries += _event_entries(last, events, t0, _prestop_containers(last))
    terminations = _terminations(seen, t0)
    for name, term in sorted(terminations.items()):
        entries += _exit_entries(name, term, t0)
    gone = next((one.at for one in seen if one.kind == "DELETED"), None)
    if gone is not None:
        entries.append(_entry(gone, t0, "pod gone from the API", "watch DELETED"))
    entries.sort(key=lambda e: (e["at"] is None, e["at"] or 0.0))
    killed = sorted(n for n, term in terminations.items() if term.get("exitCode") == SIGKILL_EXIT)
    return {"name": meta.get("name"), "uid": meta.get("uid"), "gracePeriodSeconds": grace,
            "deletedAt": None if deleted_at is None else round(deleted_at - t0, 3),
            "goneAt": None if gone is None else round(gone - t0, 3),
            "containers": {n: {"exitCode": t.get("exitCode"), "reason": t.get("reason")}
                           for n, t in sorted(terminations.items())},
            "sigkilled": killed, "timeline": entries}


def warnings(events: Iterable[Mapping[str, Any]], t0: float) -> list[dict[str, Any]]:
    """Warning Events (FailedPreStopHook and the others) on the old pods."""
    out = []
    for ev in events:
        if ev.get("type") != "Warning":
            continue
        t = event_time(ev, t0)
        involved = ev.get("involvedObject") or {}
        out.append({"object": f"{str(involved.get('kind', '')).lower()}/{involved.get('name')}",
                    "reason": ev.get("reason"), "message": " ".join(
                        str(ev.get("message", "")).split()),
                    "count": ev.get("count") or 1, "at": None if t is None else round(t - t0, 3)})
    return out


# ------------------------------------------------------------------ report and verdict


def verdict(requests: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Exit 0 when every request succeeded, 3 when some failed."""
    failed = int(requests["failed"])
    if failed:
        return {"result": "Fail", "exitCode": 3,
                "message": f"{failed} of {requests['sent']} requests failed during the rollout"}
    killed = [p["name"] for p in pods if p["sigkilled"]]
    note = f" (SIGKILLed containers in {', '.join(killed)})" if killed else ""
    return {"result": "Pass", "exitCode": 0,
            "message": f"all {requests['sent']} requests succeeded during the rollout{note}"}


@dataclass(frozen=True)
class Run:
    """What happened, as the app layer gathered it."""

    workload: Mapping[str, str]          # kind, name, namespace
    method: str
    via: Mapping[str, Any]               # mode, service, port, targets
    load: Load
    t0: float
    rollout_done: float
    log: GeneratorLog
    pods: Mapping[str, Sequence[Seen]]   # old pod uid -> what the watch saw
    events: Sequence[Mapping[str, Any]]  # the namespace's Events (the old pods' are kept)
    serving_since: Mapping[str, float] = field(default_factory=dict)  # new pod -> first Ready


def report(run: Run) -> dict[str, Any]:
    requests = request_counts(run.log.requests, run.t0)
    events, by_pod = [], defaultdict(list)
    for ev in during(run.events, run.t0):
        uid = _pod_of(ev, run.pods)
        if uid:
            events.append(ev)
            by_pod[uid].append(ev)
    pods = [pod_timeline(seen, by_pod[uid], run.t0)
            for uid, seen in sorted(run.pods.items(), key=lambda kv: _first_deleted(kv[1]))]
    return {
        "apiVersion": API_VERSION, "kind": KIND,
        "workload": dict(run.workload), "method": run.method, "via": dict(run.via),
        "load": {"path": run.load.path, "workers": run.load.workers, "rate": run.load.rate,
                 "requestTimeoutSeconds": run.load.request_timeout, "image": run.load.image},
        "startedAt": iso(run.t0), "rolloutSeconds": round(run.rollout_done - run.t0, 3),
        "requests": requests, "pods": pods,
        "replacements": [{"name": name, "servingAt": round(at - run.t0, 3), "time": iso(at)}
                         for name, at in sorted(run.serving_since.items(),
                                                key=lambda kv: kv[1])],
        "warnings": warnings(events, run.t0),
        "generatorNotes": run.log.other[:20],
        "verdict": verdict(requests, pods),
    }


def _pod_of(event: Mapping[str, Any], pods: Mapping[str, Sequence[Seen]]) -> str | None:
    """The old pod (uid) an Event is about: by uid, or by name when the Event has no uid
    (meshcfg-drain posts before it has read its pod's uid)."""
    involved = event.get("involvedObject") or {}
    if involved.get("kind") != "Pod":
        return None
    uid = involved.get("uid")
    if uid:
        return str(uid) if uid in pods else None
    return next((u for u, seen in pods.items()
                 if seen and (seen[0].pod.get("metadata") or {}).get("name")
                 == involved.get("name")), None)


def _first_deletion(seen: Sequence[Seen]) -> tuple[float | None, int | None]:
    """When the pod's deletion began and its grace period, from the first state that shows it."""
    for one in seen:
        deleted, grace = _deletion(one.pod)
        if deleted is not None:
            return deleted, grace
    return None, None


def _first_deleted(seen: Sequence[Seen]) -> float:
    deleted, _ = _first_deletion(seen)
    return math.inf if deleted is None else deleted


# ------------------------------------------------------------------ the workload


def ready_replicas(kind: str, workload: Mapping[str, Any]) -> int:
    status = workload.get("status") or {}
    key = "numberReady" if kind == "DaemonSet" else "readyReplicas"
    return int(status.get(key) or 0)


def desired_replicas(kind: str, workload: Mapping[str, Any]) -> int:
    if kind == "DaemonSet":
        return int((workload.get("status") or {}).get("desiredNumberScheduled") or 0)
    return int((workload.get("spec") or {}).get("replicas", 1))


def rolled_out(kind: str, workload: Mapping[str, Any]) -> bool:
    """`kubectl rollout status`'s condition for the kind."""
    meta, status = workload.get("metadata") or {}, workload.get("status") or {}
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return False
    replicas = desired_replicas(kind, workload)
    if kind == "DaemonSet":
        return (int(status.get("updatedNumberScheduled") or 0) >= replicas
                and int(status.get("numberAvailable") or 0) >= replicas)
    if kind == "StatefulSet":
        return (status.get("updateRevision") == status.get("currentRevision")
                and int(status.get("readyReplicas") or 0) >= replicas)
    return (int(status.get("updatedReplicas") or 0) >= replicas
            and int(status.get("replicas") or 0) <= replicas
            and int(status.get("availableReplicas") or 0) >= replicas)


def selector_text(workload: Mapping[str, Any]) -> str:
    """spec.selector as a -l string (matchLabels and matchExpressions)."""
    selector = (workload.get("spec") or {}).get("selector") or {}
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def serving(pod: Mapping[str, Any]) -> bool:
    """Ready and not being deleted."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def services_for(services: Iterable[Mapping[str, Any]],
                 labels: Mapping[str, str]) -> list[Mapping[str, Any]]:
    """The Services whose selector picks pods with these labels."""
    out = []
    for svc in services:
        selector = (svc.get("spec") or {}).get("selector") or {}
        if selector and all(labels.get(k) == v for k, v in selector.items()):
            out.append(svc)
    return out


def service_port(service: Mapping[str, Any], wanted: str | None) -> Mapping[str, Any] | None:
    ports = (service.get("spec") or {}).get("ports") or []
    if wanted is None:
        return ports[0] if ports else None
    return next((p for p in ports if p.get("name") == wanted or str(p.get("port")) == wanted),
                None)


def ready_endpoints(slices: Iterable[Mapping[str, Any]], port: Mapping[str, Any]) -> list[str]:
    """host:port of the ready endpoints in a Service's EndpointSlices, for one Service port
    (matched by name, as kube-proxy does); ready unset means ready."""
    found = set()
    for eps in slices:
        number = next((p.get("port") for p in eps.get("ports") or []
                       if (p.get("name") or "") == (port.get("name") or "")), None)
        if number is None:
            continue
        for endpoint in eps.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            for address in endpoint.get("addresses") or []:
                found.add(f"[{address}]:{number}" if ":" in address else f"{address}:{number}")
    return sorted(found)
