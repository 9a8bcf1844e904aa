"""Container images without a registry: docker-save style tarballs (one layer tar, a config
JSON, manifest.json) that `ctr -n k8s.io images import` loads into the node's containerd.

Usable as a library (tests/nodelib.py) and from scripts/testcluster (the pause image).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PASSWD = "root:x:0:0:root:/root:/sbin/nologin\nistio-proxy:x:1337:1337::/:/sbin/nologin\n"
GROUP = "root:x:0:\nistio-proxy:x:1337:\n"


@dataclass(frozen=True)
class Entry:
    """One file system entry of a layer: a host file's content, literal bytes, a
    directory or a symlink."""

    path: str                  # inside the image, no leading "/"
    source: Path | None = None
    data: bytes | None = None
    link: str | None = None
    mode: int = 0o755


def directory(path: str, mode: int = 0o755) -> Entry:
    return Entry(path.lstrip("/"), mode=mode)


def text(path: str, content: str, mode: int = 0o644) -> Entry:
    return Entry(path.lstrip("/"), data=content.encode(), mode=mode)


def host_file(path: str, source: Path | str, mode: int | None = None) -> Entry:
    source = Path(source)
    return Entry(path.lstrip("/"), source=source,
                 mode=stat.S_IMODE(source.stat().st_mode) if mode is None else mode)


def symlink(path: str, target: str) -> Entry:
    return Entry(path.lstrip("/"), link=target, mode=0o777)


def _tarinfo(e: Entry) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(e.path)
    info.mode, info.mtime = e.mode, 0
    if e.link is not None:
        info.type, info.linkname = tarfile.SYMTYPE, e.link
        return info, None
    if e.source is None and e.data is None:
        info.type = tarfile.DIRTYPE
        return info, None
    data = e.data if e.data is not None else Path(e.source or "").read_bytes()
    info.size = len(data)
    return info, data


def layer_tar(entries: Iterable[Entry]) -> bytes:
    """A reproducible layer: parents before children, fixed mtimes, root-owned."""
    buf = io.BytesIO()
    seen: set[str] = set()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in sorted(entries, key=lambda e: e.path):
            parts = e.path.split("/")
            for i in range(1, len(parts)):
                parent = "/".join(parts[:i])
                if parent not in seen:
                    seen.add(parent)
                    tar.addfile(_tarinfo(directory(parent))[0])
            if e.path in seen:
                continue
            seen.add(e.path)
            info, data = _tarinfo(e)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def write_image(out: Path, name: str, entries: Iterable[Entry],
                config: dict[str, Any] | None = None) -> Path:
    """Write a docker-save tarball of a one-layer image tagged `name` to `out`."""
    layer = layer_tar(entries)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    image_config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z",
        "config": config or {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "meshcfg images.py"}],
    }, sort_keys=True).encode()
    config_name = hashlib.sha256(image_config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [name],
                            "Layers": ["layer.tar"]}]).encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, "w") as tar:
        for fname, data in (("layer.tar", layer), (config_name, image_config),
                            ("manifest.json", manifest)):
            info = tarfile.TarInfo(fname)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, out)
    return out


def base_entries() -> list[Entry]:
    """Users, /tmp and the merged-/usr symlinks, so a read-only hostPath /usr brings the
    host's interpreters and libraries into an otherwise empty image."""
    return [text("etc/passwd", PASSWD), text("etc/group", GROUP),
            directory("tmp", 0o1777), directory("usr"), directory("proc"), directory("sys"),
            directory("dev"), symlink("bin", "usr/bin"), symlink("lib", "usr/lib"),
            symlink("lib64", "usr/lib64"), symlink("sbin", "usr/sbin")]


def package_entries(packages: Iterable[str]) -> list[Entry]:
    """The regular files and symlinks that Debian packages installed on this host
    (dpkg -L), as image entries under their real paths."""
    listed = subprocess.run(["dpkg", "-L", *packages], capture_output=True, text=True,
                            check=True).stdout.splitlines()
    entries = []
    for path in listed:
        p = Path(path)
        if p.is_dir():
            continue  # directories come with their files (merged-/usr symlinks become dirs)
        if p.is_symlink():
            entries.append(symlink(path, os.readlink(p)))
        elif p.is_file():
            entries.append(host_file(path, p))
    return entries


def import_image(ctr: Path, address: Path, tarball: Path) -> None:
    subprocess.run([str(ctr), f"--address={address}", "--namespace=k8s.io", "images",
                    "import", "--local", str(tarball)],
                   check=True, capture_output=True, text=True)
