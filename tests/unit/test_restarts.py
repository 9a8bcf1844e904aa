"""restart's plan: the outermost rollable owner of each stale pod, once; bare pods skipped."""

from __future__ import annotations

from typing import Any

from kubectl_meshcfg.core.model import Target
from kubectl_meshcfg.core.restarts import plan


def target(kind: str, name: str, owner: tuple[str, str] | None = None) -> Target:
    return Target(kind, "ns", name, {}, {}, owner=owner)


def effective(stale: bool) -> Any:
    return {"warnings": [{"code": "StaleSidecar", "message": "x"}] if stale else []}


def test_stale_pods_roll_their_deployment_once_and_nothing_else() -> None:
    deploy, other = target("Deployment", "web"), target("Deployment", "api")
    rs, rs2 = target("ReplicaSet", "web-1", ("Deployment", "web")), \
        target("ReplicaSet", "api-1", ("Deployment", "api"))
    pods = [target("Pod", "web-1-a", ("ReplicaSet", "web-1")),
            target("Pod", "web-1-b", ("ReplicaSet", "web-1")),
            target("Pod", "api-1-a", ("ReplicaSet", "api-1")),
            target("Pod", "bare")]
    result = plan([deploy, other, rs, rs2, *pods],
                  [(pods[0], effective(True)), (pods[1], effective(True)),
                   (pods[2], effective(False)), (pods[3], effective(True))])
    assert [w.name for w in result.workloads] == ["web"]
    assert result.stale_pods == {("ns", "Deployment", "web"): ["web-1-a", "web-1-b"]}
    assert [(p.name, "recreate" in why) for p, why in result.skipped] == [("bare", True)]


def test_a_pod_of_a_job_is_skipped_not_restarted() -> None:
    job = target("Job", "export")
    pod = target("Pod", "export-x", ("Job", "export"))
    result = plan([job, pod], [(pod, effective(True))])
    assert result.workloads == [] and [p.name for p, _ in result.skipped] == ["export-x"]
