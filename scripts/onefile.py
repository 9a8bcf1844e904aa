#!/usr/bin/env python3
"""Builds a PyInstaller one-file binary of a console script, cached by a hash of its inputs.

Usage (run with the project's virtualenv python; scripts/build-plugin and scripts/build-agent
call it):
  onefile.py --script NAME --package PKG [--out DIR] [--exclude MOD]... [--onedir]
             [-- PYINSTALLER ARGS]

NAME is a [project.scripts] entry of pyproject.toml (its `module:function` is the binary's
entry point); PKG (repeatable) are the project packages bundled whole: every submodule
(lazy imports included) and every `importlib.import_module("...")` literal found in their
sources, so a module moved or added never goes missing from the binary.

The binary is cached under ${XDG_CACHE_HOME:-~/.cache}/meshcfg-onefile/NAME-HASH/, HASH
covering the bundled sources, this script, the arguments, the Python version and every
installed distribution's version; a cache hit costs a copy. PyInstaller's own cache goes to a
private directory there (PYINSTALLER_CONFIG_DIR), never to the user's ~/.cache/pyinstaller.
--onedir builds PyInstaller's one-directory form instead (OUT/NAME/NAME plus OUT/NAME/_internal).
Concurrent builds of one binary build it once (flock). Prints the copied binary's path last.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "meshcfg-onefile"
KEEP_PER_NAME = 6
IMPORT_MODULE = re.compile(r"""import_module\(\s*["']([A-Za-z_][\w.]*)["']""")


def entry_point(script: str) -> tuple[str, str]:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    if script not in scripts:
        sys.exit(f"onefile: no [project.scripts] entry {script!r} in pyproject.toml")
    module, _, function = scripts[script].partition(":")
    return module, function


def package_files(packages: list[str]) -> list[Path]:
    files: list[Path] = []
    for package in packages:
        base = ROOT / package
        files += sorted(p for p in base.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return files


def hidden_imports(files: list[Path]) -> list[str]:
    found: set[str] = set()
    for path in files:
        if path.suffix == ".py":
            found.update(IMPORT_MODULE.findall(path.read_text(encoding="utf-8")))
    return sorted(found)


def input_hash(base: Path, files: list[Path], argv: list[str]) -> str:
    """Changes with any file's path (relative to base) or content, this script, the
    arguments, the Python version or any installed distribution's version."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for path in files:
        digest.update(str(path.relative_to(base)).encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update("\0".join(argv).encode())
    digest.update(sys.version.encode())
    dists = sorted(f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions())
    digest.update("\n".join(dists).encode())
    return digest.hexdigest()[:20]


def build(args: argparse.Namespace, files: list[Path], target: Path) -> None:
    module, function = entry_point(args.script)
    with tempfile.TemporaryDirectory(prefix="meshcfg-onefile-") as work_dir:
        work = Path(work_dir)
        stub = work / f"{args.script.replace('-', '_')}_entry.py"
        stub.write_text(f"import sys\n\nfrom {module} import {function}\n\nsys.exit({function}())\n")
        mode = "--onedir" if args.onedir else "--onefile"
        cmd = [sys.executable, "-m", "PyInstaller", mode, "--strip", "--noconfirm", "--clean",
               "--log-level", "WARN", "--name", args.script, "--paths", str(ROOT),
               "--distpath", str(work / "dist"), "--workpath", str(work / "build"),
               "--specpath", str(work)]
        for package in args.package:
            cmd += ["--collect-submodules", package]
        for name in hidden_imports(files):
            cmd += ["--hidden-import", name]
        for name in args.exclude:
            cmd += ["--exclude-module", name]
        cmd += [*args.pyinstaller_args, str(stub)]
        env = {**os.environ, "PYINSTALLER_CONFIG_DIR": str(CACHE / "pyinstaller-config"),
               "SOURCE_DATE_EPOCH": os.environ.get("SOURCE_DATE_EPOCH", "0")}
        print(f"onefile: building {args.script} (PyInstaller, a minute or two)...", file=sys.stderr)
        if subprocess.run(cmd, env=env, stdout=sys.stderr).returncode != 0:
            sys.exit(f"onefile: PyInstaller failed for {args.script}")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(work / "dist" / args.script, target.with_suffix(".tmp"))
        os.replace(target.with_suffix(".tmp"), target)


def prune(name: str, keep: Path) -> None:
    """Bounded cache: the newest few builds of each binary stay (worktrees differ in sources)."""
    builds = sorted(CACHE.glob(f"{name}-*/{name}"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in builds[KEEP_PER_NAME:]:
        if old.parent != keep.parent:
            shutil.rmtree(old.parent, ignore_errors=True)


def install(built: Path, out: Path) -> Path:
    """Copy the cached build to OUT; the path of the executable."""
    out.mkdir(parents=True, exist_ok=True)
    dest = out / built.name
    tmp = out / f".{built.name}.{os.getpid()}.tmp"
    if built.is_dir():
        shutil.copytree(built, tmp, symlinks=True)
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
        return dest / built.name
    shutil.copyfile(built, tmp)
    tmp.chmod(0o755)
    os.replace(tmp, dest)
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--script", required=True)
    parser.add_argument("--package", action="append", required=True)
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    parser.add_argument("--exclude", action="append", default=[])
    parser.add_argument("--onedir", action="store_true")
    parser.add_argument("pyinstaller_args", nargs="*")
    args = parser.parse_args()
    files = package_files(args.package)
    mode = "onedir" if args.onedir else "onefile"
    key = input_hash(ROOT, files, [args.script, mode, *args.package, *args.exclude, *args.pyinstaller_args])
    target = CACHE / f"{args.script}-{key}" / args.script
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{args.script}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.exists():
            build(args, files, target)
        else:
            print(f"onefile: {args.script} unchanged, cached {target}", file=sys.stderr)
        os.utime(target)
        prune(args.script, target)
        print(install(target, args.out.resolve()))


if __name__ == "__main__":
    main()
