"""The termination harness's scenarios on the real node: the same arguments as
scripts/termination-harness, the same report, but the pod is a real pod deleted through
the API and stopped by the real kubelet (preStop, SIGTERM, grace, SIGKILL), with the
harness's app, and in the proxy container Istio's real pilot-agent as PID 1 running the
harness's Envoy stand-in (Envoy cannot run here); `--pilot-agent standin` puts the
harness's Python pilot-agent stand-in there instead.

As stock Istio injects it, an istio-init container runs the real pilot-agent's
`istio-iptables` (scripts/node/istio_init.py), so clients on the host, standing for an
ingress gateway as in the harness, connect to the pod IP's application port 8080 and the
capture rules take them to the proxy's 15006; the app calls the "external" service of
the outbound scenarios (on the host at the bridge address) itself, and the rules take
the call to 15001. With `--pilot-agent standin` or `--no-capture` there is no istio-init
and clients connect to 15006 directly. Containers append their JSON
event lines (time.monotonic of the one kernel) to files in a hostPath directory, so the
timeline outlives the pod.

Extra arguments: --delete-grace N (kubectl delete --grace-period=N), --evict (the
Eviction API instead of a delete), --agent-image (default: meshcfg/drain-agent:0.1.0,
which must be imported: tests/nodelib.py does it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(ROOT))

from harness import pilot_agent  # noqa: E402
from harness.runner import NETSTAT_LOOP, STATS_MATCHERS, Scenario, play  # noqa: E402
from harness.runner import parse_args as harness_args  # noqa: E402

from kubectl_meshcfg.core.model import Target  # noqa: E402
from kubectl_meshcfg.core.render import (  # noqa: E402
    AGENT_DIR,
    AGENT_VOLUME,
    DEFAULT_AGENT_IMAGE,
    PROXY_UID,
    agent_command,
    agent_env,
    agent_installer,
)
from node import config, istio_init  # noqa: E402

PY = "/usr/bin/python3"
HOST_IMAGE = "meshcfg.local/host:1"
APP_UID = 1000
APP_PORT = 8080


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, argparse.Namespace]:
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--delete-grace", type=int, default=None)
    extra.add_argument("--evict", action="store_true")
    extra.add_argument("--agent-image", default=DEFAULT_AGENT_IMAGE)
    extra.add_argument("--kubectl", required=True)
    extra.add_argument("--kubeconfig", required=True)
    extra.add_argument("--no-capture", dest="capture", action="store_false",
                       help="no istio-init: clients and the app reach the proxy's ports directly")
    mine, rest = extra.parse_known_args(argv)
    return harness_args(rest), mine


def quote(cmd: list[str]) -> str:
    return " ".join("'" + c.replace("'", "'\\''") + "'" for c in cmd)


def logged(cmd: list[str], name: str, before: str = "") -> list[str]:
    """Run cmd with stdout/stderr appended to /out/NAME.jsonl (what the pod's log would be)."""
    return ["/bin/sh", "-c", f"{before}exec {quote(cmd)} >>/out/{name}.jsonl 2>&1"]


PROXY_BIN = {"name": "proxy-bin", "emptyDir": {}}
PROXY_BIN_MOUNT = {"name": "proxy-bin", "mountPath": "/proxy-bin"}
# the real pilot-agent: its binary (scripts/pilot-agent) from the host, its working
# directory (pilot_agent.prepare, under /out) copied into an emptyDir per pod, where it
# writes the bootstrap and its sockets as in the proxyv2 image's /
PILOT_AGENT_DIR = "/pilot-agent"
PILOT_WORK = {"name": "pilot-work", "emptyDir": {}}
PILOT_WORK_DIR = "/pilot-work"
ENVOY_LINK = f"ln -sf {PY} /proxy-bin/envoy; "


def proxy_command(args: list[str]) -> list[str]:
    """The harness's pilot-agent STAND-IN (proxy.py) as the container's PID 1, its
    processes' argv[0] being links named pilot-agent and envoy (what netstat -p and the
    agent see), as in the harness; only for --pilot-agent standin."""
    links = "".join(f"ln -sf {PY} /proxy-bin/{n}; " for n in ("pilot-agent", "envoy"))
    return logged(["/proxy-bin/pilot-agent", "/repo/scripts/harness/proxy.py", "--role",
                   "pilot-agent", "--envoy", "/proxy-bin/envoy", *args], "proxy", links)


def real_proxy_command() -> list[str]:
    """Istio's pilot-agent as PID 1 (`pilot-agent proxy sidecar`, as injected), starting
    the Envoy stand-in (envoy.py, through the link named envoy) as its Envoy."""
    setup = f"{ENVOY_LINK}cp -R /out/pilot-work/. {PILOT_WORK_DIR}/; "
    return logged([f"{PILOT_AGENT_DIR}/pilot-agent", "proxy", "sidecar"], "proxy", setup)


def pilot_agent_line(line: str) -> dict[str, Any] | None:
    """A line of Istio's log (`2026-12-03T13:10:00.123456Z<TAB>info<TAB>message`) as a
    record with its wall-clock time, else None."""
    stamp, _, rest = line.partition("\t")
    if not stamp[:4].isdigit() or "T" not in stamp:
        return None
    try:
        datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return {"time": stamp, "raw": rest.split("\t", 1)[-1]}


def scratch_dir(node: argparse.Namespace) -> Path | None:
    """The node's state dir (next to the test cluster's kubeconfig), which `testcluster
    down` removes whole: a pod still starting when a scenario cleans up makes containerd
    recreate its hostPath directory, and that copy must not outlive the node."""
    state = Path(node.kubeconfig).resolve().parent / "node"
    if not state.is_dir():
        return None
    scratch = state / "scratch"
    scratch.mkdir(exist_ok=True)
    return scratch


class NodeScenario(Scenario):
    """A harness Scenario whose pod is real: only the clients are reused."""

    def __init__(self, args: argparse.Namespace, node: argparse.Namespace) -> None:
        self.args, self.node = args, node
        self.namespace = f"nt-{uuid.uuid4().hex[:10]}"
        self.out = Path(tempfile.mkdtemp(prefix="meshcfg-node-term-", dir=scratch_dir(node)))
        os.chmod(self.out, 0o1777)
        # what Scenario's clients read: the pod IP
        self.ns = argparse.Namespace(pod_ip="")  # type: ignore[assignment]
        self.upstream: subprocess.Popen[bytes] | None = None
        self.upstream_port = 0
        self.late: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.connection_close = 0
        self.deleted_at = self.deleted_wall = 0.0
        self.gone_at: float | None = None
        if self.captured:
            self.inbound_port = APP_PORT

    # ---- API --------------------------------------------------------------
    def kubectl(self, *args: str, input: str | None = None,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([self.node.kubectl, f"--kubeconfig={self.node.kubeconfig}", *args],
                              input=input, capture_output=True, text=True, timeout=120)
        if check and proc.returncode:
            raise RuntimeError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
        return proc

    def pod(self) -> dict[str, Any] | None:
        proc = self.kubectl("get", "pod", "p", "-n", self.namespace, "-o", "json",
                            "--ignore-not-found", check=False)
        return json.loads(proc.stdout) if proc.returncode == 0 and proc.stdout.strip() else None

    def wait(self, what: str, cond: Any, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while not (value := cond()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.1)
        return value

    # ---- pod construction -------------------------------------------------
    def spec(self) -> dict[str, Any]:
        a = self.args
        self.prepare_pilot_agent()
        mounts: list[dict[str, Any]] = [
            {"name": "usr", "mountPath": "/usr", "readOnly": True},
            {"name": "repo", "mountPath": "/repo", "readOnly": True},
            {"name": "out", "mountPath": "/out"}]
        env = [{"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}]
        upstream = f"{config.GATEWAY}:{self.upstream_port}"
        # captured, the app calls the service itself and the rules take the call to 15001
        outbound = upstream if self.captured else "127.0.0.1:15001"
        app = {"name": "app", "image": HOST_IMAGE, "imagePullPolicy": "Never",
               "command": logged([PY, "/repo/scripts/harness/app.py", "--upstream", upstream,
                                  "--proxy-outbound", outbound,
                                  "--shutdown-delay", str(a.app_shutdown_delay),
                                  "--term-call", str(a.term_call),
                                  "--outbound-pool", str(a.app_outbound_pool)], "app"),
               "env": env, "volumeMounts": mounts,
               "securityContext": {"runAsUser": APP_UID, "runAsGroup": APP_UID}}
        proxy: dict[str, Any] = {
            "name": "istio-proxy", "image": HOST_IMAGE, "imagePullPolicy": "Never",
            **self.proxy_process(),
            "env": [*env, *agent_env(), *self.proxy_env(),
                    # a harness flag left out means the agent's own default
                    *({"name": f"MESHCFG_DRAIN_{k}", "value": v} for k, v in
                      (("MIN_DRAIN", a.min_drain), ("POLL_INTERVAL", a.poll_interval))
                      if v is not None)],
            "volumeMounts": [*mounts, PROXY_BIN_MOUNT,
                             {"name": AGENT_VOLUME, "mountPath": AGENT_DIR},
                             *self.pilot_agent_mounts()],
            "readinessProbe": {"tcpSocket": {"port": 15006}, "periodSeconds": 1},
            "securityContext": {"runAsUser": PROXY_UID, "runAsGroup": PROXY_UID,
                                "readOnlyRootFilesystem": True}}
        hook = self.prestop()
        if hook:
            proxy["lifecycle"] = {"preStop": {"exec": {"command": hook}}}
        init = [agent_installer(self.node.agent_image)]
        if self.captured:
            init.insert(0, self.istio_init(mounts))
        containers = [app]
        if a.native_sidecar:
            init.append({**proxy, "restartPolicy": "Always"})
        else:
            containers.append(proxy)
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "namespace": self.namespace},
                "spec": {"nodeName": config.NODE_NAME,
                         "terminationGracePeriodSeconds": a.grace_seconds,
                         "volumes": [{"name": "usr", "hostPath": {"path": "/usr"}},
                                     {"name": "repo", "hostPath": {"path": str(ROOT)}},
                                     # Directory: a pod starting after stop() removed
                                     # it fails rather than recreate it (see scratch_dir)
                                     {"name": "out", "hostPath": {"path": str(self.out),
                                                                  "type": "Directory"}},
                                     {"name": AGENT_VOLUME, "emptyDir": {}}, PROXY_BIN,
                                     *self.pilot_agent_volumes(),
                                     *([istio_init.volume()] if self.captured else [])],
                         "initContainers": init, "containers": containers}}

    # ---- the proxy container: the real pilot-agent, or the stand-in -------
    @property
    def real(self) -> bool:
        return bool(self.args.pilot_agent == "real")

    @property
    def captured(self) -> bool:
        """istio-init's rules, as stock Istio injects them (with the real pilot-agent only:
        it is the real pilot-agent that installs them)."""
        return bool(self.node.capture and self.real)

    def proxy_process(self) -> dict[str, Any]:
        a = self.args
        if self.real:
            return {"command": real_proxy_command(), "workingDir": PILOT_WORK_DIR}
        proxy_args = ["--drain-seconds", str(a.drain_seconds), "--status-port",
                      str(a.status_port), "--pool-prewarm", str(a.proxy_pool)]
        if a.no_admin_stats:
            proxy_args.append("--no-stats")
        return {"command": proxy_command(proxy_args)}

    def injected_proxy_config(self) -> dict[str, Any]:
        a = self.args
        if not self.real:
            return {"terminationDrainDuration": f"{a.drain_seconds}s"}
        return pilot_agent.proxy_config(Path(PILOT_WORK_DIR), a.drain_seconds,
                                        stats_matcher=STATS_MATCHERS[a.stats])

    def proxy_env(self) -> list[dict[str, Any]]:
        """PROXY_CONFIG as injected (the agent reads it too); for pilot-agent what the
        injector gives it from the downward API, and what real Envoy would learn from
        istiod (the harness's MESHCFG_ENVOY_* variables)."""
        env: list[dict[str, Any]] = [{"name": "PROXY_CONFIG",
                                      "value": json.dumps(self.injected_proxy_config())}]
        if not self.real:
            return env
        a = self.args
        env += [{"name": "INSTANCE_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "HOME", "value": PILOT_WORK_DIR},
                {"name": "MESHCFG_ENVOY_POOL_PREWARM", "value": str(a.proxy_pool)},
                {"name": "MESHCFG_ENVOY_NO_STATS", "value": "1" if a.no_admin_stats else ""}]
        if self.captured:  # Istio 1.10+: the inbound cluster's endpoint is the pod IP
            env.append({"name": "MESHCFG_ENVOY_APP_HOST", "value": "$(INSTANCE_IP)"})
        if a.exit_on_zero:
            env.append({"name": "EXIT_ON_ZERO_ACTIVE_CONNECTIONS", "value": "true"})
        return env

    def pilot_agent_mounts(self) -> list[dict[str, Any]]:
        if not self.real:
            return []
        return [{"name": "pilot-agent", "mountPath": PILOT_AGENT_DIR, "readOnly": True},
                {"name": PILOT_WORK["name"], "mountPath": PILOT_WORK_DIR}]

    def pilot_agent_volumes(self) -> list[dict[str, Any]]:
        if not self.real:
            return []
        binary = Path(pilot_agent.binary())
        return [{"name": "pilot-agent", "hostPath": {"path": str(binary.parent)}}, PILOT_WORK]

    def istio_init(self, mounts: list[dict[str, Any]]) -> dict[str, Any]:
        """Stock istio-init: the real pilot-agent installing the capture rules (its output,
        the rules it applied, goes to /out/istio-init.jsonl)."""
        binary = next(m for m in self.pilot_agent_mounts() if m["name"] == "pilot-agent")
        return istio_init.container(
            HOST_IMAGE, logged([f"{PILOT_AGENT_DIR}/pilot-agent", *istio_init.ARGS], "istio-init"),
            [*(m for m in mounts if m["name"] in ("usr", "out")), binary])

    def prepare_pilot_agent(self) -> None:
        """The working directory the pods copy: the bootstrap template, a root
        certificate, and `envoy` running envoy.py (as the pod sees the checkout)."""
        if self.real and not (self.out / "pilot-work").exists():
            pilot_agent.prepare(self.out / "pilot-work", "/proxy-bin/envoy", uid=PROXY_UID,
                                envoy_script="/repo/scripts/harness/envoy.py")

    def prestop(self) -> list[str] | None:
        a = self.args
        if a.prestop == "none":
            return None
        if a.prestop == "netstat":
            return ["/bin/sh", "-c", NETSTAT_LOOP]
        target = Target("Pod", self.namespace, "p", {}, {}, grace_period=a.grace_seconds)
        return agent_command({"lifecycle.terminationDrainDuration": f"{a.drain_seconds}s"},
                             target, {"enabled": True})

    def start(self) -> None:
        with socket.socket() as s:  # scenarios run in parallel: one upstream port each
            s.bind((config.GATEWAY, 0))
            self.upstream_port = s.getsockname()[1]
        self.upstream = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts/harness/app.py"), "--host", config.GATEWAY,
             "--port", str(self.upstream_port), "--comm", "upstream"], stdout=subprocess.PIPE)
        assert self.upstream.stdout is not None
        if b"listening" not in self.upstream.stdout.readline():
            raise RuntimeError("upstream service did not start")
        self.kubectl("create", "namespace", self.namespace)
        self.wait("the default ServiceAccount", lambda: self.kubectl(
            "get", "sa", "default", "-n", self.namespace, check=False).returncode == 0, 60)
        self.kubectl("apply", "-n", self.namespace, "-f",
                     str(ROOT / "manifests/drain-agent-role.yaml"))
        self.kubectl("apply", "-f", "-", input=json.dumps(self.spec()))
        pod = self.wait("the pod to be ready", self.ready, 180)
        self.ns.pod_ip = pod["status"]["podIP"]
        if self.args.app_outbound_pool:
            self.wait("the app's pool", lambda: self.events("app", event="pool_ready"), 30)

    def ready(self) -> dict[str, Any] | None:
        pod = self.pod()
        conds = (pod or {}).get("status", {}).get("conditions", [])
        return pod if any(c["type"] == "Ready" and c["status"] == "True" for c in conds) else None

    def stop(self) -> None:
        if self.upstream is not None:
            self.upstream.kill()
            self.upstream.wait()
        self.kubectl("delete", "namespace", self.namespace, "--wait=false", check=False)
        shutil.rmtree(self.out, ignore_errors=True)

    # ---- the deletion -----------------------------------------------------
    def delete(self) -> None:
        self.deleted_at, self.deleted_wall = time.monotonic(), time.time()
        if self.node.evict:
            body = {"apiVersion": "policy/v1", "kind": "Eviction",
                    "metadata": {"name": "p", "namespace": self.namespace}}
            self.kubectl("create", "--raw",
                         f"/api/v1/namespaces/{self.namespace}/pods/p/eviction", "-f", "-",
                         input=json.dumps(body))
        else:
            grace = [] if self.node.delete_grace is None else [
                f"--grace-period={self.node.delete_grace}"]
            self.kubectl("delete", "pod", "p", "-n", self.namespace, "--wait=false", *grace)
        self.wait("the pod to go away", lambda: self.pod() is None, self.args.grace_seconds + 60)
        self.gone_at = time.monotonic() - self.deleted_at

    def kill_envoy(self) -> None:
        """A crash (OOM kill) of Envoy, not of the container's PID 1, as the harness does:
        the pod's processes are the host's, found by their comm and POD_NAMESPACE."""
        mine = f"POD_NAMESPACE={self.namespace}".encode()
        for entry in Path("/proc").iterdir():
            try:
                comm = (entry / "comm").read_text().strip()
                env = (entry / "environ").read_bytes().split(b"\0") if comm == "envoy" else []
            except OSError:
                continue
            if mine in env:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(entry.name), signal.SIGKILL)

    def events(self, container: str, **match: Any) -> list[dict[str, Any]]:
        """JSON lines of container "app" or "proxy" (the agent writes into the latter)."""
        path = self.out / f"{container}.jsonl"
        found = []
        for line in path.read_text().splitlines() if path.exists() else []:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if all(rec.get(k) == v for k, v in match.items()):
                found.append(rec)
        return found

    async def run(self) -> dict[str, Any]:
        a = self.args
        loop = asyncio.get_running_loop()
        idle, path, tasks = await self.start_load()
        if a.requests:
            await loop.run_in_executor(None, lambda: self.wait(
                "the requests to reach the app",
                lambda: any(r.get("path") == path and r.get("active", 0) >= a.requests
                            for r in self.events("app", event="request_started")),
                60 + a.requests / 20))
        stopping = loop.run_in_executor(None, self.delete)
        if a.kill_envoy_at is not None:
            loop.call_later(a.kill_envoy_at, self.kill_envoy)
        late: list[asyncio.Task[str]] = []
        if a.late_requests:
            # timed from kubelet's stop call (the app's SIGTERM), as in the harness where
            # deletion and stop coincide; here the stop lags the deletion by 0.2-1.8 s
            await loop.run_in_executor(None, lambda: self.wait(
                "the app's SIGTERM", lambda: self.events("app", event="sigterm"), 60))
            late = await self.late_load()
        return self.node_report(await self.outcomes(tasks, late, idle, stopping))

    def at(self, rec: dict[str, Any] | None) -> float | None:
        """Seconds from the deletion: stand-ins log time.monotonic ("t"), the agent logs
        wall-clock time ("time", milliseconds)."""
        if rec is None:
            return None
        if "t" in rec:
            return round(float(rec["t"]) - (self.deleted_at or 0.0), 2)
        stamp = datetime.fromisoformat(str(rec["time"]).replace("Z", "+00:00")).timestamp()
        return round(stamp - self.deleted_wall, 2)

    def pilot_agent_milestones(self) -> dict[str, list[dict[str, Any]]]:
        """pilot-agent's SIGTERM, its exit and its killing Envoy: the stand-in's JSON
        events, or the real one's log lines (pkg/envoy/agent.go, proxy.go)."""
        if not self.real:
            return {k: self.events("proxy", who="pilot-agent", event=e) for k, e in (
                ("proxy_sigterm", "sigterm"), ("proxy_exit", "exit"),
                ("envoy_killed", "envoy_killed"))}
        path = self.out / "proxy.jsonl"
        lines = [r for r in map(pilot_agent_line, path.read_text(errors="replace").splitlines()
                                if path.exists() else []) if r]
        return {k: [r for r in lines if r["raw"].startswith(text)] for k, text in (
            ("proxy_sigterm", "Agent draining Proxy for termination"),
            ("proxy_exit", "Agent has successfully terminated"),
            ("envoy_killed", "Aborting proxy"))}

    def capture_report(self) -> dict[str, Any]:
        """Whether istio-init's rules were in place and what they redirected to the proxy."""
        log = self.out / "istio-init.jsonl"
        rules = [ln for ln in (log.read_text(errors="replace").splitlines() if log.exists()
                               else []) if ln.startswith("-A ISTIO_")]
        seen = self.events("proxy", who="envoy", event="captured")
        return {"istio_init": self.captured, "istio_rules": len(rules),
                **{f"{kind}_original_destinations": sorted({e["original_dst"] for e in seen
                                                            if e["listener"] == kind})
                   for kind in ("inbound", "outbound")}}

    def node_report(self, statuses: Counter[str]) -> dict[str, Any]:
        a = self.args
        agent = next((r for r in reversed(self.events("proxy"))
                      if r.get("msg") in ("drain_completed", "drain_timed_out")), None)
        agent_start = next((r for r in self.events("proxy") if "msg" in r and "time" in r), None)
        first = {k: (v[0] if v else None) for k, v in {
            "app_sigterm": self.events("app", event="sigterm"),
            "app_exit": self.events("app", event="exit"),
            **self.pilot_agent_milestones(),
        }.items()}
        reasons = [e["reason"] for e in json.loads(self.kubectl(
            "get", "events", "-n", self.namespace, "-o", "json").stdout)["items"]]
        return {
            "name": a.name, "prestop": a.prestop, "request_seconds": a.request_seconds,
            "drain_seconds": a.drain_seconds, "grace_seconds": a.grace_seconds,
            "delete_grace": self.node.delete_grace, "evict": self.node.evict,
            "native_sidecar": a.native_sidecar, "pilot_agent": a.pilot_agent,
            "sent": a.requests, "succeeded": statuses.get("200", 0),
            "failed": a.requests - statuses.get("200", 0), "statuses": dict(statuses),
            "connection_errors": dict(self.errors),
            "late_sent": a.late_requests, "late_succeeded": self.late.get("200", 0),
            "prestop_exit": agent.get("exitCode") if agent else None,
            "prestop_started_at": self.at(agent_start),
            # from kubelet's exec of the hook to the agent's first line (the one-file
            # binary unpacking itself, Python starting)
            "agent_startup_seconds": (agent_start or {}).get("startupSeconds"),
            "prestop_finished_at": self.at(agent),
            "app_sigterm_at": self.at(first["app_sigterm"]),
            "app_exited_at": self.at(first["app_exit"]),
            "proxy_sigterm_at": self.at(first["proxy_sigterm"]),
            "proxy_exited_at": self.at(first["proxy_exit"]),
            "proxy_killed": first["proxy_exit"] is None,
            "envoy_killed_by_pilot_agent": first["envoy_killed"] is not None,
            "pod_gone_at": round(self.gone_at, 2) if self.gone_at is not None else None,
            "agent": agent, "event_reasons": sorted(set(reasons)),
            # Events the agent gave up waiting for at exit (its bounded final wait)
            "agent_events_unsent": sorted({r for line in self.events("proxy", msg="events_unsent")
                                           for r in line.get("reasons", [])}),
            "capture": self.capture_report(),
            "failed_prestop_hook": "FailedPreStopHook" in reasons,
        }


def main(argv: list[str]) -> int:
    args, node = parse_args(argv)
    return play(NodeScenario(args, node))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
