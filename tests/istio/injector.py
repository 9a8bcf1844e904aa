"""Offline access to Istio's real sidecar injector (``istioctl kube-inject``).

istioctl is built from the ``istio.io/istio`` module pinned in ``scripts/istio/go.mod``
by ``scripts/istioctl`` (cached in ``~/.cache/meshcfg-istio/<version>/``). The three
injector inputs are never copied into the repo: they are rendered from Istio's own
charts at that exact version with ``istioctl manifest generate`` (offline), and taken
from the ConfigMaps ``istio`` (key ``mesh``) and ``istio-sidecar-injector`` (keys
``config`` and ``values``), exactly what a cluster installed with that version holds.

Use from Python (the ``istio_injector`` pytest fixture wraps this)::

    inj = Injector.create()                      # builds istioctl / renders inputs if needed
    objs = inj.inject(deployment_dict_or_yaml)   # -> list of injected objects
    proxy_container(objs[0])["resources"]
    inj.with_mesh({"defaultConfig": {"concurrency": 3}}).inject(...)

or from the shell (``scripts/istio-inject`` runs this file)::

    scripts/istio-inject inputs                  # print the paths of the three inputs
    scripts/istio-inject inject -f pod.yaml [--mesh-overrides m.yaml | --mesh m.yaml]
        [--native-sidecars] [--set values.global.foo=bar ...]

Only the standard library and PyYAML are used, so this file also runs on its own.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
ISTIOCTL_SCRIPT = REPO / "scripts" / "istioctl"

PROXY = "istio-proxy"
INIT = "istio-init"

# A cold build of istioctl on a loaded 2-core machine takes a long while.
BUILD_TIMEOUT_S = 3600.0
RUN_TIMEOUT_S = 120.0

# Default flags for `istioctl manifest generate`: the stock `default` profile, with
# nothing changed. Callers may add `--set` flags (the chart values / IstioOperator API).
DEFAULT_GENERATE_FLAGS: tuple[str, ...] = ("--set", "profile=default")

# istio-init's istio-iptables flags that carry capture settings (see the injection
# template of the pinned chart, files/injection-template.yaml).
CAPTURE_FLAGS = {
    "-i": "includeOutboundIPRanges",
    "-x": "excludeOutboundIPRanges",
    "-b": "includeInboundPorts",
    "-d": "excludeInboundPorts",
    "-q": "includeOutboundPorts",
    "-o": "excludeOutboundPorts",
}


class InjectorError(RuntimeError):
    """istioctl failed (build, manifest generate or kube-inject); carries its stderr."""


def _cache_root() -> Path:
    base = os.environ.get("MESHCFG_ISTIO_CACHE")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "meshcfg-istio"


def istio_version() -> str:
    """The pinned istio.io/istio version (from scripts/istio/go.mod)."""
    out = subprocess.run(
        [str(ISTIOCTL_SCRIPT), "--print-version"],
        check=True, capture_output=True, text=True,
    )
    return out.stdout.strip()


def istioctl_binary() -> Path:
    """Path of the cached istioctl binary; builds it first when it is missing."""
    proc = subprocess.run(
        [str(ISTIOCTL_SCRIPT), "--print-path"],
        capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
    )
    if proc.returncode != 0:
        raise InjectorError(f"building istioctl failed:\n{proc.stderr}")
    return Path(proc.stdout.strip().splitlines()[-1])


def _offline_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    # Never talk to a cluster: kube-inject and manifest generate only need files.
    env["KUBECONFIG"] = os.devnull
    env.pop("ENABLE_NATIVE_SIDECARS", None)
    if extra:
        env.update(extra)
    return env


def _run(binary: Path, args: Sequence[str], env: Mapping[str, str] | None = None,
         stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(binary), *args],
        capture_output=True, text=True, input=stdin, timeout=RUN_TIMEOUT_S,
        env=_offline_env(env),
    )
    if proc.returncode != 0:
        raise InjectorError(
            f"istioctl {' '.join(args)} failed (exit {proc.returncode}):\n{proc.stderr}"
        )
    return proc


def deep_merge(base: Any, over: Any) -> Any:
    """Helm's mergeOverwrite on plain data: maps merge recursively, anything else replaces."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = deep_merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(over)


@dataclass(frozen=True)
class InjectorInputs:
    """The three files kube-inject reads, as a cluster's ConfigMaps hold them."""

    mesh: Path      # ConfigMap istio, key mesh (MeshConfig YAML)
    config: Path    # ConfigMap istio-sidecar-injector, key config (templates + policy)
    values: Path    # ConfigMap istio-sidecar-injector, key values (JSON)

    def mesh_config(self) -> dict[str, Any]:
        data = yaml.safe_load(self.mesh.read_text())
        return data if isinstance(data, dict) else {}


def generate_inputs(directory: Path, istioctl: Path | None = None,
                    generate_flags: Sequence[str] = DEFAULT_GENERATE_FLAGS) -> InjectorInputs:
    """Render Istio's charts offline and extract the injector inputs into ``directory``."""
    binary = istioctl or istioctl_binary()
    directory.mkdir(parents=True, exist_ok=True)
    proc = _run(binary, ["manifest", "generate", *generate_flags])
    (directory / "manifest.yaml").write_text(proc.stdout)
    configmaps: dict[str, dict[str, str]] = {}
    for doc in yaml.safe_load_all(proc.stdout):
        if isinstance(doc, dict) and doc.get("kind") == "ConfigMap":
            configmaps[doc["metadata"]["name"]] = doc.get("data") or {}
    # a revision's ConfigMaps carry its name: istio-<rev>, istio-sidecar-injector-<rev>
    injector_name = next((n for n in configmaps if n.startswith("istio-sidecar-injector")),
                         "istio-sidecar-injector")
    mesh_name = next((n for n in configmaps if (n == "istio" or n.startswith("istio-"))
                      and "mesh" in configmaps[n]), "istio")
    try:
        mesh = configmaps[mesh_name]["mesh"]
        config = configmaps[injector_name]["config"]
        values = configmaps[injector_name]["values"]
    except KeyError as exc:
        raise InjectorError(
            f"manifest generate did not produce the injector ConfigMaps ({exc}); "
            f"got ConfigMaps {sorted(configmaps)}"
        ) from exc
    inputs = InjectorInputs(
        mesh=directory / "mesh.yaml",
        config=directory / "inject-config.yaml",
        values=directory / "values.json",
    )
    # write atomically: concurrent sessions may share the cache directory
    for path, text in ((inputs.mesh, mesh), (inputs.config, config), (inputs.values, values)):
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(text)
        tmp.replace(path)
    return inputs


def default_inputs_dir(generate_flags: Sequence[str] = DEFAULT_GENERATE_FLAGS) -> Path:
    key = hashlib.sha256("\0".join(generate_flags).encode()).hexdigest()[:12]
    return _cache_root() / istio_version() / f"inputs-{key}"


def _as_yaml_stream(manifest: Any) -> str:
    if isinstance(manifest, str):
        return manifest
    if isinstance(manifest, Mapping):
        return yaml.safe_dump(dict(manifest), sort_keys=False)
    if isinstance(manifest, Iterable):
        return yaml.safe_dump_all([dict(m) for m in manifest], sort_keys=False)
    raise TypeError(f"cannot inject {type(manifest).__name__}")


# ---------------------------------------------------------------------------------
# Helpers that read an injected object (a Pod or a workload with a pod template).


def pod_spec(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The pod spec of a Pod, or the pod template's spec of a workload (CronJob too)."""
    if obj.get("kind") == "Pod":
        spec: dict[str, Any] = obj["spec"]
        return spec
    if obj.get("kind") == "CronJob":
        spec = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        return spec
    spec = obj["spec"]["template"]["spec"]
    return spec


def pod_metadata(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The metadata of a Pod, or of the pod template of a workload."""
    if obj.get("kind") == "Pod":
        holder: Mapping[str, Any] = obj
    elif obj.get("kind") == "CronJob":
        holder = obj["spec"]["jobTemplate"]["spec"]["template"]
    else:
        holder = obj["spec"]["template"]
    meta: dict[str, Any] = holder.get("metadata") or {}
    return meta


def pod_annotations(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict(pod_metadata(obj).get("annotations") or {})


def container(obj: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The container ``name``, looked up in containers, then initContainers."""
    spec = pod_spec(obj)
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            if c.get("name") == name:
                found: dict[str, Any] = c
                return found
    raise KeyError(f"no container {name!r} in the injected pod")


def container_names(obj: Mapping[str, Any], key: str = "containers") -> list[str]:
    return [c["name"] for c in pod_spec(obj).get(key) or []]


def proxy_container(obj: Mapping[str, Any]) -> dict[str, Any]:
    return container(obj, PROXY)


def init_container(obj: Mapping[str, Any]) -> dict[str, Any]:
    return container(obj, INIT)


def resources(c: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """A container's resources as plain strings: {"requests": {...}, "limits": {...}}."""
    res = c.get("resources") or {}
    return {k: {r: str(q) for r, q in (v or {}).items()} for k, v in res.items() if v}


def args(c: Mapping[str, Any]) -> list[str]:
    return [str(a) for a in c.get("args") or []]


def flag_value(c: Mapping[str, Any], flag: str) -> str | None:
    """Value of ``flag`` in a container's args, as ``--flag=v`` or ``--flag v``."""
    argv = args(c)
    for i, a in enumerate(argv):
        if a.startswith(flag + "="):
            return a[len(flag) + 1:]
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
    return None


def env(c: Mapping[str, Any]) -> dict[str, Any]:
    """A container's env: name -> value (or the valueFrom mapping when there is one)."""
    out: dict[str, Any] = {}
    for e in c.get("env") or []:
        out[e["name"]] = e["value"] if "value" in e else e.get("valueFrom")
    return out


def proxy_config(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The ProxyConfig the injector froze into istio-proxy's PROXY_CONFIG env (parsed)."""
    raw = env(proxy_container(obj)).get("PROXY_CONFIG")
    if not isinstance(raw, str):
        raise KeyError("istio-proxy has no PROXY_CONFIG env")
    data: dict[str, Any] = json.loads(raw)
    return data


def capture_args(obj: Mapping[str, Any]) -> dict[str, str]:
    """istio-init's istio-iptables flag -> value pairs (``{"-i": "*", "-d": "15090,..."}``).

    Single-dash flags followed by a value are paired; ``--x=y`` flags are split;
    lone flags map to "".
    """
    argv = args(init_container(obj))
    out: dict[str, str] = {}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("--"):
            name, _, value = a.partition("=")
            out[name] = value
        elif a.startswith("-") and len(a) == 2:
            nxt = argv[i + 1] if i + 1 < len(argv) else ""
            if nxt.startswith("-") and len(nxt) == 2 and nxt[1].isalpha():
                out[a] = ""
            else:
                out[a] = nxt
                i += 1
        i += 1
    return out


def capture_settings(obj: Mapping[str, Any]) -> dict[str, str]:
    """capture_args by annotation-style name (includeOutboundIPRanges, ...)."""
    flags = capture_args(obj)
    return {name: flags[f] for f, name in CAPTURE_FLAGS.items() if f in flags}


def lifecycle(c: Mapping[str, Any]) -> dict[str, Any]:
    return dict(c.get("lifecycle") or {})


@dataclass(frozen=True)
class Injector:
    """Runs ``istioctl kube-inject`` offline with a fixed set of inputs."""

    istioctl: Path
    inputs: InjectorInputs
    workdir: Path
    native_sidecars: bool = False
    extra_env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, workdir: Path | None = None,
               generate_flags: Sequence[str] = DEFAULT_GENERATE_FLAGS) -> Injector:
        """Build istioctl if needed and render the inputs into ``workdir``.

        Without ``workdir`` the inputs live in the cache next to the binary and are
        reused once rendered.
        """
        binary = istioctl_binary()
        if workdir is None:
            workdir = default_inputs_dir(generate_flags)
            inputs = InjectorInputs(workdir / "mesh.yaml", workdir / "inject-config.yaml",
                                    workdir / "values.json")
            if not all(p.is_file() for p in (inputs.mesh, inputs.config, inputs.values)):
                inputs = generate_inputs(workdir, binary, generate_flags)
        else:
            inputs = generate_inputs(workdir, binary, generate_flags)
        return cls(istioctl=binary, inputs=inputs, workdir=workdir)

    # -- variants -------------------------------------------------------------------

    def with_mesh(self, overrides: Mapping[str, Any] | None = None, *,
                  mesh: Mapping[str, Any] | str | None = None) -> Injector:
        """An injector using a custom mesh config (the ``istio`` ConfigMap's ``mesh``).

        ``overrides`` is deep-merged into the chart's mesh config, as the chart itself
        merges ``--set meshConfig.*`` (e.g. ``{"defaultConfig": {"concurrency": 3}}``);
        ``mesh`` replaces the whole mesh config (a dict or the YAML text).
        """
        if mesh is not None:
            text = mesh if isinstance(mesh, str) else yaml.safe_dump(dict(mesh), sort_keys=False)
        else:
            merged = deep_merge(self.inputs.mesh_config(), dict(overrides or {}))
            text = yaml.safe_dump(merged, sort_keys=False)
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        path = self.workdir / f"mesh-{digest}.yaml"
        if not path.is_file():
            tmp = path.with_name(f".{path.name}.{os.getpid()}")
            tmp.write_text(text)
            tmp.replace(path)
        return replace(self, inputs=replace(self.inputs, mesh=path))

    def with_native_sidecars(self, enabled: bool = True) -> Injector:
        """Inject as istiod does on clusters with native sidecar support.

        Offline, kube-inject cannot look at the nodes, so ENABLE_NATIVE_SIDECARS'
        default ``auto`` means *off*; a real istiod in ``auto`` mode turns native
        sidecars on when every node's kubelet supports them.
        """
        return replace(self, native_sidecars=enabled)

    # -- injection ------------------------------------------------------------------

    def inject_text(self, manifest: Any) -> str:
        """Run kube-inject on a manifest (dict, list of dicts or YAML text); return YAML."""
        text = _as_yaml_stream(manifest)
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=self.workdir,
                                         delete=False) as handle:
            handle.write(text)
            in_path = Path(handle.name)
        try:
            env = dict(self.extra_env)
            env["ENABLE_NATIVE_SIDECARS"] = "true" if self.native_sidecars else "auto"
            proc = _run(self.istioctl, [
                # an explicit revision: without one, kube-inject asks the cluster for
                # the default revision and waits for that forever when there is none
                "kube-inject", "--revision", "default", "-f", str(in_path),
                "--meshConfigFile", str(self.inputs.mesh),
                "--injectConfigFile", str(self.inputs.config),
                "--valuesFile", str(self.inputs.values),
            ], env=env)
        finally:
            in_path.unlink(missing_ok=True)
        return proc.stdout

    def inject(self, manifest: Any) -> list[dict[str, Any]]:
        """Run kube-inject; return the injected objects, parsed."""
        return [d for d in yaml.safe_load_all(self.inject_text(manifest)) if d]

    def inject_one(self, manifest: Any) -> dict[str, Any]:
        objs = self.inject(manifest)
        if len(objs) != 1:
            raise InjectorError(f"expected one injected object, got {len(objs)}")
        return objs[0]

    # -- helpers on injected objects (also available as module functions) --------------

    pod_spec = staticmethod(pod_spec)
    pod_metadata = staticmethod(pod_metadata)
    pod_annotations = staticmethod(pod_annotations)
    container = staticmethod(container)
    container_names = staticmethod(container_names)
    proxy = staticmethod(proxy_container)
    init = staticmethod(init_container)
    resources = staticmethod(resources)
    args = staticmethod(args)
    flag_value = staticmethod(flag_value)
    env = staticmethod(env)
    proxy_config = staticmethod(proxy_config)
    capture_args = staticmethod(capture_args)
    capture_settings = staticmethod(capture_settings)
    lifecycle = staticmethod(lifecycle)


# ---------------------------------------------------------------------------------
# Command line (scripts/istio-inject).


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="istio-inject",
        description="Run Istio's real sidecar injector offline (pinned istioctl kube-inject).",
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_inputs = sub.add_parser("inputs", help="render the injector inputs; print their paths")
    p_inject = sub.add_parser("inject", help="inject a manifest; print the result")
    for p in (p_inputs, p_inject):
        p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                       help="extra `istioctl manifest generate --set` flag (chart values)")
    p_inject.add_argument("-f", "--filename", required=True, help="manifest file, or - for stdin")
    group = p_inject.add_mutually_exclusive_group()
    group.add_argument("--mesh", help="whole mesh config file (the istio ConfigMap's mesh)")
    group.add_argument("--mesh-overrides",
                       help="YAML file deep-merged into the chart's mesh config")
    p_inject.add_argument("--native-sidecars", action="store_true",
                          help="inject as istiod does when native sidecars are enabled")
    ns = parser.parse_args(argv)

    flags: list[str] = list(DEFAULT_GENERATE_FLAGS)
    for s in ns.set:
        flags += ["--set", s]
    try:
        inj = Injector.create(generate_flags=flags)
        if ns.cmd == "inputs":
            print(f"istioctl: {inj.istioctl}")
            print(f"mesh:     {inj.inputs.mesh}")
            print(f"config:   {inj.inputs.config}")
            print(f"values:   {inj.inputs.values}")
            return 0
        if ns.mesh:
            inj = inj.with_mesh(mesh=Path(ns.mesh).read_text())
        elif ns.mesh_overrides:
            inj = inj.with_mesh(yaml.safe_load(Path(ns.mesh_overrides).read_text()) or {})
        if ns.native_sidecars:
            inj = inj.with_native_sidecars()
        text = sys.stdin.read() if ns.filename == "-" else Path(ns.filename).read_text()
        sys.stdout.write(inj.inject_text(text))
        return 0
    except (InjectorError, OSError) as exc:
        print(f"istio-inject: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(_main())
