"""rollout-test's pure part: the generator's log, request counts, termination timelines
assembled from watched pod states and Events, the verdict, endpoints and rollout status."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kubectl_meshcfg.core import loadgen, rollout
from kubectl_meshcfg.core.rollout import Request, Seen

T0 = 1_800_000_000.25       # the restart began a quarter second into a second


def stamp(offset: float, micro: bool = False) -> str:
    return rollout.iso(T0 + offset) if micro else rollout.iso(int(T0 + offset)).replace(
        ".000Z", "Z")


def test_the_log_splits_requests_events_and_foreign_lines() -> None:
    text = "\n".join([
        json.dumps({"event": "started", "time": T0 - 3}),
        json.dumps({"start": T0 - 1, "end": T0 + 2, "target": "10.0.0.5:80", "status": "200"}),
        "Traceback (most recent call last):",
        json.dumps({"start": T0, "end": T0 + 1, "target": "10.0.0.6:80", "status": "reset"}),
        json.dumps([1, 2]), json.dumps({"event": "done", "time": T0 + 9}), ""])
    log = rollout.parse_log(text)
    assert [r.status for r in log.requests] == ["200", "reset"]
    assert log.events == {"started": T0 - 3, "done": T0 + 9}
    assert log.other == ["Traceback (most recent call last):", "[1, 2]"]


def test_counts_by_status_and_by_second_of_start_and_end() -> None:
    requests = [Request(T0 - 0.5, T0 + 20.1, "a:80", "200"),
                Request(T0 + 0.1, T0 + 3.3, "b:80", "reset"),
                Request(T0 + 0.2, T0 + 0.3, "b:80", "503"),
                Request(T0 + 0.3, T0 + 0.4, "b:80", "404")]
    counts = rollout.request_counts(requests, T0)
    assert (counts["sent"], counts["succeeded"], counts["failed"]) == (4, 2, 2)
    assert counts["byStatus"] == {"200": 1, "404": 1, "503": 1, "reset": 1}
    assert counts["bySecond"] == [
        {"second": -1, "sent": 1, "succeeded": 0, "failed": 0},
        {"second": 0, "sent": 3, "succeeded": 1, "failed": 1},
        {"second": 3, "sent": 0, "succeeded": 0, "failed": 1},
        {"second": 20, "sent": 0, "succeeded": 1, "failed": 0}]
    assert [f["status"] for f in counts["failures"]] == ["reset", "503"]


statuses = st.sampled_from(["200", "204", "404", "500", "503", "reset", "timeout", "closed"])
requests_st = st.lists(st.builds(
    lambda start, length, status: Request(T0 + start, T0 + start + length, "t:1", status),
    st.floats(-30, 300), st.floats(0, 60), statuses), max_size=60)


@given(requests_st)
def test_every_request_is_counted_once_sent_and_once_ended(requests: list[Request]) -> None:
    counts = rollout.request_counts(requests, T0)
    assert counts["sent"] == len(requests) == sum(counts["byStatus"].values())
    assert sum(s["sent"] for s in counts["bySecond"]) == len(requests)
    assert sum(s["succeeded"] + s["failed"] for s in counts["bySecond"]) == len(requests)
    assert counts["failed"] == len(counts["failures"]) == sum(
        1 for r in requests if not (r.status.isdigit() and int(r.status) < 500))
    assert [s["second"] for s in counts["bySecond"]] == sorted({s["second"]
                                                                 for s in counts["bySecond"]})
    verdict = rollout.verdict(counts, [])
    assert verdict["exitCode"] == (3 if counts["failed"] else 0)


def pod(phase: str, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "web-1", "uid": "u1"}
    status: dict[str, Any] = {}
    if phase != "running":
        meta.update(deletionTimestamp=stamp(30), deletionGracePeriodSeconds=30)
    if phase == "done":
        status["initContainerStatuses"] = [{"name": "meshcfg-drain-install", "state": {
            "terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": stamp(-60)}}}]
        status["containerStatuses"] = [
            {"name": "app", "state": {"terminated": {
                "exitCode": 143, "reason": "Error", "finishedAt": stamp(2)}}},
            {"name": "istio-proxy", "state": {"terminated": {
                "exitCode": 137, "reason": "Error", "finishedAt": stamp(30)}}}]
    spec = {"containers": [{"name": "app"}, {"name": "istio-proxy", "lifecycle": {
        "preStop": {"exec": {"command": ["/meshcfg-drain/meshcfg-drain"]}}}}]}
    return {"metadata": meta, "spec": spec, "status": status, **extra}


def event(reason: str, offset: float, container: str = "", component: str = "kubelet",
          warning: bool = False, uid: str | None = "u1", micro: bool = False,
          last: float | None = None) -> dict[str, Any]:
    involved: dict[str, Any] = {"kind": "Pod", "name": "web-1"}
    if uid:
        involved["uid"] = uid
    if container:
        involved["fieldPath"] = f"spec.containers{{{container}}}"
    ev: dict[str, Any] = {"reason": reason, "message": f"{reason} message",
                          "type": "Warning" if warning else "Normal",
                          "source": {"component": component}, "involvedObject": involved,
                          "firstTimestamp": stamp(offset),
                          "lastTimestamp": stamp(offset if last is None else last)}
    if micro:
        ev["eventTime"] = stamp(offset, micro=True)
    return ev


def run(events: list[dict[str, Any]], requests: list[Request] | None = None) -> dict[str, Any]:
    seen = [Seen(T0 - 5, "LISTED", pod("running")), Seen(T0 + 0.1, "MODIFIED", pod("deleting")),
            Seen(T0 + 31.5, "MODIFIED", pod("done")), Seen(T0 + 31.6, "DELETED", pod("done"))]
    log = rollout.GeneratorLog(requests or [Request(T0 - 1, T0 + 1, "a:1", "200")])
    return rollout.report(rollout.Run(
        {"kind": "Deployment", "name": "web", "namespace": "shop"}, "restart",
        {"mode": "endpoints"}, rollout.Load(), T0, T0 + 12, log, {"u1": seen}, events))


def test_a_timeline_from_pod_states_and_events_in_time_order() -> None:
    report = run([
        event("MissingClusterDNS", -60, warning=True),               # before the restart
        event("Killing", 0, "app"), event("Killing", 0, "istio-proxy"),
        event("DrainStarted", 0.4, "istio-proxy", "meshcfg-drain", uid=None, micro=True),
        event("DrainTimedOut", 26.5, "istio-proxy", "meshcfg-drain", warning=True, micro=True),
        event("FailedPreStopHook", 27, "istio-proxy", warning=True),
        event("Killing", 0, "app", uid="another-pod"),
    ])
    (timeline,) = report["pods"]
    whats = [e["what"] for e in timeline["timeline"]]
    assert whats == [
        "deleted (grace period 30s)",
        "app: SIGTERM",
        "istio-proxy: preStop hook starts (SIGTERM after it)",
        "DrainStarted: DrainStarted message",
        "app: exited on SIGTERM (exit 143, Error)",
        "DrainTimedOut: DrainTimedOut message",
        "istio-proxy: preStop hook ends, SIGTERM",
        "warning FailedPreStopHook: FailedPreStopHook message",
        "istio-proxy: SIGKILL (exit 137, Error)",
        "pod gone from the API"], whats
    assert timeline["deletedAt"] == -0.25         # whole seconds: the second t0 began in
    assert timeline["goneAt"] == 31.6
    assert timeline["sigkilled"] == ["istio-proxy"]
    assert "meshcfg-drain-install" not in timeline["containers"]
    assert [(w["reason"], w["object"]) for w in report["warnings"]] == [
        ("DrainTimedOut", "pod/web-1"), ("FailedPreStopHook", "pod/web-1")]
    assert report["verdict"]["exitCode"] == 0
    assert "SIGKILLed containers in web-1" in report["verdict"]["message"]


def test_a_repeated_warning_counts_from_its_last_time_since_the_restart() -> None:
    report = run([event("Unhealthy", -40, "istio-proxy", warning=True, last=21)])
    assert [(w["reason"], w["at"]) for w in report["warnings"]] == [("Unhealthy", 20.75)]


def test_failed_requests_fail_the_verdict() -> None:
    report = run([], [Request(T0 - 1, T0 + 4, "a:1", "200"), Request(T0, T0 + 4, "a:1", "reset")])
    assert report["verdict"] == {"result": "Fail", "exitCode": 3,
                                 "message": "1 of 2 requests failed during the rollout"}
    assert report["kind"] == "RolloutTestReport" and report["rolloutSeconds"] == 12


def test_ready_endpoints_of_the_named_port_only() -> None:
    slices = [{"ports": [{"name": "http", "port": 8080}, {"name": "grpc", "port": 9090}],
               "endpoints": [{"addresses": ["10.0.0.5"], "conditions": {"ready": True}},
                             {"addresses": ["10.0.0.6"], "conditions": {"ready": False,
                                                                        "terminating": True}},
                             {"addresses": ["10.0.0.7"]}]},
              {"ports": [{"name": "http", "port": 8080}],
               "endpoints": [{"addresses": ["fd00::1"], "conditions": {"ready": True}}]},
              {"ports": [{"name": "metrics", "port": 9100}],
               "endpoints": [{"addresses": ["10.0.0.9"]}]}]
    assert rollout.ready_endpoints(slices, {"name": "http", "port": 80}) == [
        "10.0.0.5:8080", "10.0.0.7:8080", "[fd00::1]:8080"]


def test_services_ports_and_selectors() -> None:
    svc = {"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [
        {"name": "http", "port": 80}, {"name": "admin", "port": 9000}]}}
    other = {"metadata": {"name": "db"}, "spec": {"selector": {"app": "db"}}}
    no_selector = {"metadata": {"name": "ext"}, "spec": {}}
    assert rollout.services_for([svc, other, no_selector], {"app": "web", "v": "1"}) == [svc]
    assert rollout.service_port(svc, None) == {"name": "http", "port": 80}
    assert rollout.service_port(svc, "9000") == {"name": "admin", "port": 9000}
    assert rollout.service_port(svc, "grpc") is None
    workload = {"spec": {"selector": {"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["a", "b"]},
        {"key": "canary", "operator": "DoesNotExist"}]}}}
    assert rollout.selector_text(workload) == "app=web,tier in (a,b),!canary"


def test_rolled_out_as_kubectl_rollout_status_judges_it() -> None:
    def deploy(generation: int, observed: int, **status: int) -> dict[str, Any]:
        return {"metadata": {"generation": generation}, "spec": {"replicas": 2},
                "status": {"observedGeneration": observed, **status}}
    assert not rollout.rolled_out("Deployment", deploy(2, 1, updatedReplicas=2, replicas=2,
                                                       availableReplicas=2))
    assert not rollout.rolled_out("Deployment", deploy(2, 2, updatedReplicas=2, replicas=3,
                                                       availableReplicas=2))
    assert rollout.rolled_out("Deployment", deploy(2, 2, updatedReplicas=2, replicas=2,
                                                   availableReplicas=2))
    sts = {"metadata": {"generation": 1}, "spec": {"replicas": 2}, "status": {
        "observedGeneration": 1, "updateRevision": "b", "currentRevision": "a",
        "readyReplicas": 2}}
    assert not rollout.rolled_out("StatefulSet", sts)
    assert rollout.ready_replicas("DaemonSet", {"status": {"numberReady": 3}}) == 3


def test_the_generator_pod_is_bounded_unprivileged_and_reads_its_annotations() -> None:
    load = rollout.Load("/slow", 3, 5, 30, "example/python:3", "node-a")
    pod = rollout.generator_pod("g", "shop", "r1", load, ["10.0.0.5:80", "10.0.0.6:80"], 660)
    spec = pod["spec"]
    (container,) = spec["containers"]
    assert pod["metadata"]["annotations"][loadgen.TARGETS] == "10.0.0.5:80,10.0.0.6:80"
    assert spec["activeDeadlineSeconds"] == 660 and spec["restartPolicy"] == "Never"
    assert spec["nodeName"] == "node-a" and spec["automountServiceAccountToken"] is False
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["command"][:4] == ["python3", "-u", "-c", loadgen.GENERATOR]
    assert container["command"][4:] == [loadgen.ANNOTATIONS_FILE, "/slow", "3", "5", "30"]
    assert "@TARGETS@" not in loadgen.GENERATOR and loadgen.TARGETS in loadgen.GENERATOR
    compile(loadgen.GENERATOR, "generator", "exec")


def new_pod(name: str, ready: bool, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": f"uid-{name}"}
    if deleting:
        meta["deletionTimestamp"] = stamp(40)
    return {"metadata": meta, "status": {"conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}}


def test_replacements_are_the_new_pods_first_seen_serving_in_time_order() -> None:
    """What --delete-pods/--evict wait for between two old pods, so a reader (and the node
    test) can check the second went only after a replacement served."""
    from kubectl_meshcfg.app.rollout_test import _PodLog

    log = _PodLog({"u1"})
    log("MODIFIED", pod("deleting"), T0 + 0.1)               # an old pod: not a replacement
    log("ADDED", new_pod("web-b", ready=False), T0 + 0.5)
    log("MODIFIED", new_pod("web-b", ready=True), T0 + 3.25)
    log("MODIFIED", new_pod("web-b", ready=True), T0 + 9.0)   # still serving: first time kept
    log("MODIFIED", new_pod("web-a", ready=True), T0 + 2.0)
    log("MODIFIED", new_pod("web-c", ready=True, deleting=True), T0 + 1.0)  # not serving
    log("DELETED", new_pod("web-d", ready=True), T0 + 1.5)
    report = rollout.report(rollout.Run(
        {"kind": "Deployment", "name": "web", "namespace": "shop"}, "delete-pods",
        {"mode": "endpoints"}, rollout.Load(), T0, T0 + 12,
        rollout.GeneratorLog([]), log.seen, [], log.serving_since))
    assert [(r["name"], r["servingAt"]) for r in report["replacements"]] == [
        ("web-a", 2.0), ("web-b", 3.25)]
    assert [s.kind for s in log.seen["u1"]] == ["MODIFIED"]
