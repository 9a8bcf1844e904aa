"""Builds the node's binaries into ~/.cache/meshcfg-testcluster (shared, locked by flock).

containerd, runc and the CNI plugins each come from their own module under scripts/node/
(no shared dependency resolution between them); kubelet comes from scripts/cluster/go.mod
like the control plane, so it is the apiserver's version; pause is Kubernetes' own
build/pause/linux/pause.c from the module cache, linked statically.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class GoBuild:
    """One `go build` of some main packages of one module, into one cached bin dir."""

    name: str           # cache directory prefix, e.g. "containerd"
    module_dir: Path    # directory holding the go.mod with the `tool` lines
    module: str         # the required module whose version names the cache dir
    packages: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    tags: str = ""

    def version(self) -> str:
        text = (self.module_dir / "go.mod").read_text()
        m = re.search(rf"^\s*(?:require\s+)?{re.escape(self.module)} (v\S+)", text, re.M)
        if not m:
            raise SystemExit(f"{self.module} not required in {self.module_dir / 'go.mod'}")
        return m.group(1)

    def binaries(self) -> list[str]:
        return [go_binary_name(p) for p in self.packages]


def go_binary_name(pkg: str) -> str:
    """The file name `go build -o DIR/` gives a main package (major-version suffix dropped)."""
    parts = pkg.split("/")
    return parts[-2] if re.fullmatch(r"v[2-9][0-9]*", parts[-1]) else parts[-1]


CONTAINERD = GoBuild(
    "containerd", HERE / "containerd", "github.com/containerd/containerd/v2",
    tuple(f"github.com/containerd/containerd/v2/cmd/{c}"
          for c in ("containerd", "containerd-shim-runc-v2", "ctr")),
    env=(("CGO_ENABLED", "0"),), tags="no_btrfs no_devmapper no_zfs")
RUNC = GoBuild(
    "runc", HERE / "runc", "github.com/opencontainers/runc", ("github.com/opencontainers/runc",),
    env=(("CGO_ENABLED", "1"),), tags="seccomp urfave_cli_no_docs")
CNI = GoBuild(
    "cni-plugins", HERE / "cni", "github.com/containernetworking/plugins",
    tuple(f"github.com/containernetworking/plugins/plugins/{p}"
          for p in ("main/bridge", "ipam/host-local", "main/loopback")),
    env=(("CGO_ENABLED", "0"),))
GO_BUILDS = (CONTAINERD, RUNC, CNI)

Log = Callable[[str], None]


@contextlib.contextmanager
def cache_lock(cache_root: Path, name: str) -> Iterator[None]:
    """Builds into the shared cache are serialised across sessions and state dirs."""
    cache_root.mkdir(parents=True, exist_ok=True)
    with open(cache_root / f"{name}.build.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def bin_dir(cache_root: Path, build: GoBuild) -> Path:
    return cache_root / f"{build.name}-{build.version()}" / "bin"


def cached(dest: Path, names: list[str]) -> bool:
    return all(os.access(dest / n, os.X_OK) for n in names)


def go_build(cache_root: Path, build: GoBuild, log: Log, ldflags: str = "") -> Path:
    dest = bin_dir(cache_root, build)
    with cache_lock(cache_root, build.name):
        if not cached(dest, build.binaries()):
            run_go_build(dest, build.module_dir, list(build.packages), dict(build.env),
                         build.tags, ldflags, cache_root / f"build-{build.name}.log", log)
    return dest


def run_go_build(dest: Path, module_dir: Path, packages: list[str], env: dict[str, str],
                 tags: str, ldflags: str, logfile: Path, log: Log) -> None:
    go = shutil.which("go")
    if go is None:
        raise SystemExit("`go` is not on PATH")
    dest.parent.mkdir(parents=True, exist_ok=True)
    log(f"building {', '.join(go_binary_name(p) for p in packages)} (log: {logfile})")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp, open(logfile, "w") as out:
        cmd = [go, "build", "-trimpath", "-buildvcs=false"]
        cmd += [f"-tags={tags}"] if tags else []
        cmd += [f"-ldflags={ldflags}"] if ldflags else []
        cmd += ["-o", tmp + "/", *packages]
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.run(cmd, cwd=module_dir, stdout=out, stderr=out,
                              env={**os.environ, **env})
        if proc.returncode:
            raise SystemExit(f"go build failed; see {logfile}")
        dest.mkdir(exist_ok=True)
        for pkg in packages:
            os.replace(Path(tmp) / go_binary_name(pkg), dest / go_binary_name(pkg))
    log(f"built in {time.monotonic() - started:.0f}s")


def ensure_libseccomp(log: Log) -> None:
    """runc's seccomp support links libseccomp (Debian's libseccomp-dev)."""
    if subprocess.run(["pkg-config", "--exists", "libseccomp"]).returncode == 0:
        return
    if not shutil.which("apt-get"):
        raise SystemExit("runc needs libseccomp-dev (pkg-config libseccomp not found)")
    log("installing libseccomp-dev (needed to build runc with seccomp)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "libseccomp-dev"]):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")


def pause_binary(cache_root: Path, k8s_version: str, log: Log) -> Path:
    """Kubernetes' pause.c from the module cache, static (the image has nothing else)."""
    dest = cache_root / f"pause-{k8s_version}" / "pause"
    with cache_lock(cache_root, "pause"):
        if os.access(dest, os.X_OK):
            return dest
        src = module_dir_of("k8s.io/kubernetes", k8s_version) / "build/pause/linux/pause.c"
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".tmp")
        log(f"building pause from {src}")
        subprocess.run(["gcc", "-Os", "-static", "-o", str(tmp), str(src),
                        '-DVERSION="meshcfg"'], check=True)
        os.replace(tmp, dest)
    return dest


def module_dir_of(module: str, version: str) -> Path:
    out = subprocess.run(["go", "mod", "download", "-json", f"{module}@{version}"],
                         capture_output=True, text=True, check=True, cwd=HERE).stdout
    m = re.search(r'"Dir": "([^"]+)"', out)
    if not m:
        raise SystemExit(f"go mod download {module}@{version} gave no directory")
    return Path(m.group(1))


def build_all(cache_root: Path, k8s_version: str, log: Log) -> dict[str, Path]:
    """Every node binary, built if missing: name -> path."""
    ensure_libseccomp(log)
    paths: dict[str, Path] = {}
    for b in GO_BUILDS:
        dest = go_build(cache_root, b, log)
        paths.update({n: dest / n for n in b.binaries()})
    paths["pause"] = pause_binary(cache_root, k8s_version, log)
    return paths
