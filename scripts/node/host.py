"""What a node changes on the host, recorded before `up --node` and undone by `down`.

kubelet sets sysctls (vm.overcommit_memory, kernel.panic, kernel.panic_on_oops, ...), the
CNI bridge plugin sets net.ipv4.ip_forward, kubelet bind-mounts its root dir onto itself,
containerd creates /run/containerd/{s,runc} whatever its configured dirs, pods leave
network namespaces, veths, cgroups and mounts behind when kubelet or containerd die.
`restore` removes exactly what is new since the snapshot and lies in the node's own
places (names and path prefixes), so parallel users of the machine are left alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

CGROUP_FS = Path("/sys/fs/cgroup")
NETNS_DIR = Path("/run/netns")
# kubelet's setupKernelTunables, the bridge plugin's ip_forward, and their neighbours
SYSCTLS = (
    "vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes", "net/ipv4/ip_forward",
    "net/ipv4/conf/all/forwarding", "net/ipv4/conf/default/forwarding",
    "net/ipv6/conf/all/forwarding", "net/bridge/bridge-nf-call-iptables",
    "net/bridge/bridge-nf-call-ip6tables",
)
# places on the host where kubelet, containerd or the CNI plugins write regardless of
# their configured directories (found by diffing the host before and after a node ran)
WATCHED_DIRS = (
    "/run/containerd", "/var/run/containerd", "/var/lib/cni", "/var/log/pods",
    "/var/log/containers", "/var/lib/kubelet", "/etc/cni", "/opt/cni", "/opt/containerd",
    "/run/nri", "/var/run/nri", "/etc/kubernetes", "/var/lib/containerd", "/run/runc",
    "/run/netns",
)


@dataclass
class Snapshot:
    sysctls: dict[str, str] = field(default_factory=dict)
    mounts: list[str] = field(default_factory=list)
    interfaces: list[str] = field(default_factory=list)
    netns: list[str] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)
    paths: dict[str, list[str] | None] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1, sort_keys=True))

    @classmethod
    def load(cls, path: Path) -> Snapshot:
        return cls(**json.loads(path.read_text()))


def read_sysctl(name: str) -> str | None:
    try:
        return (Path("/proc/sys") / name).read_text().strip()
    except OSError:
        return None


def write_sysctl(name: str, value: str) -> None:
    (Path("/proc/sys") / name).write_text(value + "\n")


def mount_points() -> list[str]:
    """Mount points in mount order (later entries may sit on top of earlier ones)."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        points.append(line.split()[4].encode().decode("unicode_escape"))
    return points


def interfaces() -> list[str]:
    return sorted(os.listdir("/sys/class/net"))


def cgroup_dirs(root: str = "") -> list[str]:
    """Every cgroup directory (all v1 hierarchies and the unified one) under `root`."""
    found = []
    for hierarchy in sorted(CGROUP_FS.iterdir()):
        top = hierarchy / root.lstrip("/")
        for dirpath, _dirs, _files in os.walk(top):
            found.append(dirpath)
    return found


def dir_state(path: str) -> list[str] | None:
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return []


def snapshot(extra_dirs: Iterable[str] = ()) -> Snapshot:
    return Snapshot(
        sysctls={s: v for s in SYSCTLS if (v := read_sysctl(s)) is not None},
        mounts=mount_points(), interfaces=interfaces(),
        netns=sorted(os.listdir(NETNS_DIR)) if NETNS_DIR.is_dir() else [],
        cgroups=cgroup_dirs(),
        paths={p: dir_state(p) for p in (*WATCHED_DIRS, *extra_dirs)})


@dataclass(frozen=True)
class NodePlaces:
    """Where this node may leave things: restore touches nothing outside these."""

    cgroup_root: str            # e.g. "/meshcfg-node"
    bridge: str                 # the CNI bridge interface
    mount_prefixes: tuple[str, ...]
    shim: str                   # path of our containerd-shim-runc-v2
    extra_dirs: tuple[str, ...] = ()


def restore(before: Snapshot, places: NodePlaces) -> list[str]:
    """Undo what the node changed; returns one line per thing undone (for the log)."""
    done: list[str] = []
    done += kill_cgroup_processes(places.cgroup_root)
    done += kill_shims(places.shim)
    done += unmount_new(before, places)
    done += remove_netns(before)
    done += remove_interfaces(before, places.bridge)
    done += remove_cgroups(before, places.cgroup_root)
    done += remove_paths(before, places)
    done += restore_sysctls(before)
    return done


def cgroup_pids(root: str) -> set[int]:
    pids: set[int] = set()
    for d in cgroup_dirs(root):
        try:
            text = (Path(d) / "cgroup.procs").read_text()
        except OSError:
            continue
        pids.update(int(p) for p in text.split())
    return pids


def kill_cgroup_processes(root: str, timeout: float = 30.0) -> list[str]:
    """SIGKILL every process of the pods (they live in the node's cgroup subtree)."""
    killed: set[int] = set()
    deadline = time.monotonic() + timeout
    while (pids := cgroup_pids(root)) and time.monotonic() < deadline:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    return [f"killed {len(killed)} container process(es)"] if killed else []


def processes() -> Iterator[tuple[int, str]]:
    """(pid, argv[0]) of every process whose command line can be read."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv0 = (entry / "cmdline").read_bytes().split(b"\0")[0].decode()
        except OSError:
            continue
        yield int(entry.name), argv0


def processes_running(exe: str) -> list[int]:
    return [pid for pid, argv0 in processes() if argv0 == exe]


def kill_shims(shim: str, timeout: float = 10.0) -> list[str]:
    """containerd's shims outlive containerd; ours run our cached shim binary."""
    pids = processes_running(shim)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while processes_running(shim) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [f"killed {len(pids)} containerd shim(s)"] if pids else []


def ours(path: str, prefixes: Iterable[str]) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)


def unmount_new(before: Snapshot, places: NodePlaces) -> list[str]:
    """Detach every mount made under the node's places, topmost first."""
    done = []
    old = set(before.mounts)
    prefixes = (*places.mount_prefixes, str(NETNS_DIR / "cni-"))
    for _ in range(5):  # a detached parent can reveal nothing new, but be thorough
        new = [m for m in mount_points()
               if (m not in old or ours(m, places.mount_prefixes)) and
               (ours(m, places.mount_prefixes) or m.startswith(prefixes[-1]))]
        if not new:
            break
        for m in reversed(new):
            if subprocess.run(["umount", "-l", m], capture_output=True).returncode == 0:
                done.append(f"unmounted {m}")
    return done


def remove_netns(before: Snapshot) -> list[str]:
    done: list[str] = []
    if not NETNS_DIR.is_dir():
        return done
    for name in sorted(set(os.listdir(NETNS_DIR)) - set(before.netns)):
        if name.startswith("cni-"):
            subprocess.run(["umount", "-l", str(NETNS_DIR / name)], capture_output=True)
            (NETNS_DIR / name).unlink(missing_ok=True)
            done.append(f"removed network namespace {name}")
    return done


def bridge_ports(bridge: str) -> list[str]:
    brif = Path("/sys/class/net") / bridge / "brif"
    return sorted(os.listdir(brif)) if brif.is_dir() else []


def remove_interfaces(before: Snapshot, bridge: str) -> list[str]:
    done = []
    old = set(before.interfaces)
    for name in [*bridge_ports(bridge), bridge]:
        if name not in old and (Path("/sys/class/net") / name).exists():
            subprocess.run(["ip", "link", "del", name], capture_output=True)
            done.append(f"deleted interface {name}")
    return done


def remove_cgroups(before: Snapshot, root: str, timeout: float = 30.0) -> list[str]:
    """rmdir new cgroups under the node's root, deepest first (EBUSY while a task is
    still exiting, hence the retries)."""
    old = set(before.cgroups)
    deadline = time.monotonic() + timeout
    while True:
        left = [d for d in cgroup_dirs(root) if d not in old]
        for d in sorted(left, key=lambda p: p.count("/"), reverse=True):
            with contextlib.suppress(OSError):
                os.rmdir(d)
        remaining = [d for d in cgroup_dirs(root) if d not in old]
        if not remaining or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return [f"removed {len(left)} cgroup dir(s) under {root}"] if left else []


def remove_paths(before: Snapshot, places: NodePlaces) -> list[str]:
    done = []
    for path, entries in before.paths.items():
        now = dir_state(path)
        if now is None:
            continue
        new = [path] if entries is None else [os.path.join(path, e) for e in sorted(set(now) - set(entries))]
        for p in new:
            if path == str(NETNS_DIR) and not os.path.basename(p).startswith("cni-"):
                continue  # other users' namespaces
            subprocess.run(["rm", "-rf", "--one-file-system", p], capture_output=True)
            done.append(f"removed {p}")
    return done


def restore_sysctls(before: Snapshot) -> list[str]:
    done = []
    for name, value in before.sysctls.items():
        now = read_sysctl(name)
        if now is not None and now != value:
            write_sysctl(name, value)
            done.append(f"sysctl {name.replace('/', '.')} {now} -> {value}")
    return done
