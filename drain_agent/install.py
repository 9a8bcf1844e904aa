"""`meshcfg-drain install DEST`: copy this one-file binary to DEST (an emptyDir that
istio-proxy mounts). The delivery image needs no shell or cp: the agent installs itself."""

from __future__ import annotations

import os
import shutil
import sys


def running_binary() -> str:
    """The one-file executable when frozen by PyInstaller, else the interpreter's script."""
    if getattr(sys, "frozen", False):
        return sys.executable
    return os.path.abspath(sys.argv[0])


def install(destination: str, source: str | None = None) -> None:
    source = source or running_binary()
    os.makedirs(os.path.dirname(destination) or ".", exist_ok=True)
    partial = destination + ".partial"
    shutil.copyfile(source, partial)
    os.chmod(partial, 0o755)
    os.replace(partial, destination)     # atomic: a hook never sees half a binary
    print(f"meshcfg-drain: installed {source} as {destination}")
