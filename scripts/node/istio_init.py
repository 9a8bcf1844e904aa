"""istio-init as stock Istio injects it, for the node's pods: the real `pilot-agent
istio-iptables` with the injection template's default arguments, run as root with
NET_ADMIN and NET_RAW, installing the REDIRECT capture rules in the pod's network
namespace. tests/istio/test_injector_facts.py checks ARGS against `istioctl kube-inject`.

With the rules in place, a client's connection to the app port lands on the proxy's
15006 and the app's outbound calls on 15001; the Envoy stand-in finds where they were
going from SO_ORIGINAL_DST, as Envoy's original-destination listeners do.
"""

from __future__ import annotations

from typing import Any

from node import iptables

PROXY_UID = "1337"
# the injection template's istio-init args with the chart's values (REDIRECT mode,
# every outbound range and inbound port captured, status/metrics/health ports excluded)
ARGS = ("istio-iptables", "-p", "15001", "-z", "15006", "-u", PROXY_UID, "-m", "REDIRECT",
        "-i", "*", "-x", "", "-b", "*", "-d", "15090,15021,15020",
        "--log_output_level=default:info")
MOUNT = "/iptables"
VOLUME = "iptables"


def container(image: str, command: list[str], mounts: list[dict[str, Any]]) -> dict[str, Any]:
    """The init container: `command` runs pilot-agent with ARGS (wrapped for its log),
    `mounts` bring the host's pilot-agent and whatever the wrapper needs."""
    env = iptables.environment(MOUNT)
    return {"name": "istio-init", "image": image, "imagePullPolicy": "Never",
            "command": command, "env": [{"name": k, "value": v} for k, v in env.items()],
            "volumeMounts": [*mounts, {"name": VOLUME, "mountPath": MOUNT, "readOnly": True}],
            "securityContext": {"runAsUser": 0, "runAsGroup": 0, "runAsNonRoot": False,
                                "allowPrivilegeEscalation": False, "privileged": False,
                                "capabilities": {"add": ["NET_ADMIN", "NET_RAW"],
                                                 "drop": ["ALL"]}}}


def volume() -> dict[str, Any]:
    return {"name": VOLUME, "hostPath": {"path": str(iptables.root())}}
