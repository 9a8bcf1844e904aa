"""iptables for the node pods' istio-init, unpacked from Debian's packages into the cache.

istio-init (`pilot-agent istio-iptables`) execs `iptables-nft`, `iptables-legacy-save` and
friends from PATH; the kernel here has nf_tables, REDIRECT, owner and conntrack built in,
but the machine has no iptables userland. Installing Debian's package would change the
host, so its .debs (pinned below) are fetched with `apt-get download` (on a private apt
state: its own package lists and cache in a temporary directory, whatever the host's lists
hold; nothing under /var is written) and unpacked with `dpkg-deb -x` into
~/.cache/meshcfg-testcluster/iptables-VERSION/; the pod mounts that
directory read-only and finds the libraries and xtables extensions through
LD_LIBRARY_PATH and XTABLES_LIBDIR.

    python3 scripts/node/iptables.py      # fetches when missing; prints the unpacked root
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.build import cache_lock  # noqa: E402

VERSION = "1.8.9-2"
PACKAGES = (f"iptables={VERSION}", f"libip4tc2={VERSION}", f"libip6tc2={VERSION}",
            f"libxtables12={VERSION}", "libnftnl11=1.2.4-2", "libmnl0=1.0.4-3",
            "libnetfilter-conntrack3=1.0.9-3", "libnfnetlink0=1.0.2-2")
LIB = "usr/lib/x86_64-linux-gnu"
SBIN = "usr/sbin"
CACHE_ROOT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "meshcfg-testcluster"


def root(cache_root: Path = CACHE_ROOT) -> Path:
    """The unpacked tree (usr/sbin, usr/lib/...), fetched first when missing."""
    dest = cache_root / f"iptables-{VERSION}"
    with cache_lock(cache_root, "iptables"):
        if not os.access(dest / SBIN / "xtables-nft-multi", os.X_OK):
            fetch(dest)
    return dest


def fetch(dest: Path) -> None:
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise SystemExit("iptables for istio-init: needs apt-get and dpkg-deb (Debian)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        for sub in ("lists/partial", "cache/archives/partial"):
            (Path(tmp) / sub).mkdir(parents=True)
        # root downloads into a private directory: apt's _apt sandbox user cannot write it
        apt = ["apt-get", "-q", "-o", "APT::Sandbox::User=root",
               "-o", f"Dir::State::Lists={tmp}/lists", "-o", f"Dir::Cache={tmp}/cache"]
        for args in (["update"], ["download", *PACKAGES]):
            proc = subprocess.run([*apt, *args], cwd=tmp, capture_output=True, text=True)
            if proc.returncode:
                raise SystemExit(f"apt-get {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
        tree = Path(tmp) / "root"
        for deb in sorted(Path(tmp).glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tree, dest)


def environment(mounted_at: str) -> dict[str, str]:
    """What a process needs to run the unpacked iptables mounted at `mounted_at`."""
    return {"PATH": f"{mounted_at}/{SBIN}:/usr/sbin:/usr/bin:/sbin:/bin",
            "LD_LIBRARY_PATH": f"{mounted_at}/{LIB}",
            "XTABLES_LIBDIR": f"{mounted_at}/{LIB}/xtables"}


if __name__ == "__main__":
    print(root())
