"""The one-file plugin binary: built by scripts/build-plugin, runs where there is no Python,
bundles every module of the package, and behaves exactly like the virtualenv entry point."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from pkglib import ROOT

pytestmark = pytest.mark.packaging

EXAMPLES = str(ROOT / "examples")
# The C libraries of any glibc system; PyInstaller bundles everything else (libpython too).
GLIBC_RUNTIME = ("libm.so.6", "librt.so.1", "libutil.so.1", "libresolv.so.2")


def run(binary: Path, *args: str, cwd: Path = ROOT) -> tuple[int, str, str]:
    r = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=120, cwd=cwd)
    return r.returncode, r.stdout, r.stderr


def bundle_listing(binary: Path) -> list[str]:
    viewer = Path(sys.executable).parent / "pyi-archive_viewer"
    out = subprocess.run([str(viewer), "-r", "-b", str(binary)], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    return [line.strip() for line in out.splitlines() if line.startswith(" ")]


def package_modules(package: str) -> set[str]:
    base = ROOT / package
    modules = set()
    for path in base.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


def onefile_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("onefile", ROOT / "scripts" / "onefile.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def subcommands(binary: Path) -> list[str]:
    _, out, _ = run(binary, "--help")
    listing = out.split("Commands:\n", 1)[1]
    return [line.split()[0] for line in listing.splitlines() if line.startswith("  ")]


def test_one_executable_file(plugin_binary: Path) -> None:
    assert plugin_binary.name == "kubectl-meshcfg"
    assert list(plugin_binary.parent.iterdir()) == [plugin_binary]
    assert plugin_binary.read_bytes()[:4] == b"\x7fELF"
    assert plugin_binary.stat().st_mode & 0o777 == 0o755
    assert plugin_binary.stat().st_size < 40 * 2**20


def test_bundles_every_module_of_the_package(plugin_binary: Path) -> None:
    """Lazily imported modules (and any a restructuring adds) must be in the bundle, or the
    command that imports them fails only in the binary."""
    listing = set(bundle_listing(plugin_binary))
    missing = package_modules("kubectl_meshcfg") - listing
    assert not missing, sorted(missing)


def test_bundles_what_the_package_imports_by_name(plugin_binary: Path) -> None:
    sources = [p for p in (ROOT / "kubectl_meshcfg").rglob("*.py")]
    named = set(onefile_module().hidden_imports(sources))
    assert "kubernetes.config.exec_provider" in named   # the exec credential path
    assert named <= set(bundle_listing(plugin_binary))


def test_leaves_out_development_tools_and_the_agent(plugin_binary: Path) -> None:
    tops = {name.split(".")[0].split("/")[0] for name in bundle_listing(plugin_binary)}
    for banned in ("pytest", "_pytest", "hypothesis", "mypy", "PyInstaller", "drain_agent",
                   "psutil", "tkinter", "setuptools", "pip"):
        assert banned not in tops, banned
    assert {"click", "yaml", "urllib3", "kubectl_meshcfg"} <= tops


@pytest.fixture
def no_python_root(plugin_binary: Path) -> Iterator[Path]:
    """A root file system holding only the binary, glibc, zlib and the examples."""
    root = Path(tempfile.mkdtemp(prefix="meshcfg-nopython-"))
    ldd = subprocess.run(["ldd", str(plugin_binary)], capture_output=True, text=True, check=True)
    libs = [Path(p) for p in re.findall(r"(/\S+)", ldd.stdout)]
    libc_dir = next(p.parent for p in libs if p.name == "libc.so.6")
    for lib in libs + [libc_dir / name for name in GLIBC_RUNTIME]:
        (root / lib.relative_to("/")).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(lib, root / lib.relative_to("/"))
    (root / "tmp").mkdir(mode=0o1777)
    (root / "work").mkdir()
    shutil.copyfile(plugin_binary, root / "work" / "kubectl-meshcfg")
    (root / "work" / "kubectl-meshcfg").chmod(0o755)
    shutil.copytree(ROOT / "examples", root / "work" / "examples")
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_runs_on_a_machine_without_python(no_python_root: Path, venv_plugin: Path) -> None:
    files = [p for p in no_python_root.rglob("*") if p.is_file()]
    assert not [p for p in files if "python" in p.name.lower()]
    assert len(files) < 30
    argv = ["chroot", str(no_python_root), "/work/kubectl-meshcfg"]
    for args in (["--version"], ["explain", "--local", "-f", "/work/examples", "-A"]):
        r = subprocess.run([*argv, *args], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        expected = run(venv_plugin, *[a.replace("/work/examples", EXAMPLES) for a in args])
        assert r.stdout == expected[1]


CASES = {
    "help": ["--help"],
    "version": ["--version"],
    "explain-json": ["explain", "--local", "-f", EXAMPLES, "-A", "-o", "json"],
    "explain-one": ["explain", "--local", "-f", EXAMPLES, "deployment/svc-a", "-n", "ai"],
    "lint-finds": ["lint", "--local", "-f", EXAMPLES, "-A"],
    "get-yaml": ["get", "--local", "-f", EXAMPLES, "-A", "-o", "yaml"],
    "render": ["render", "--local", "-f", EXAMPLES, "deployment/svc-a", "-n", "ai"],
    "diff": ["diff", "--local", "--base", EXAMPLES, "-f", str(ROOT / "examples" / "20-prod.yaml")],
    "not-found": ["explain", "--local", "-f", EXAMPLES, "pod/nope", "-n", "ai"],
    "usage": ["get", "--bogus"],
    "no-kubeconfig": ["get", "--kubeconfig", "/nonexistent/kubeconfig"],
}


@pytest.mark.parametrize("args", CASES.values(), ids=CASES.keys())
def test_same_output_and_exit_code_as_the_virtualenv(plugin_binary: Path, venv_plugin: Path,
                                                      args: list[str]) -> None:
    assert run(plugin_binary, *args) == run(venv_plugin, *args)


def test_every_subcommand_help_as_in_the_virtualenv(plugin_binary: Path, venv_plugin: Path) -> None:
    commands = subcommands(venv_plugin)
    assert {"explain", "lint", "get", "apply", "diff", "delete", "render", "sync"} <= set(commands)
    for command in commands:
        assert run(plugin_binary, command, "--help") == run(venv_plugin, command, "--help"), command


def test_a_second_build_is_a_cache_hit(plugin_binary: Path, tmp_path: Path) -> None:
    r = subprocess.run([str(ROOT / "scripts" / "build-plugin"), "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "unchanged" in r.stderr and "PyInstaller" not in r.stderr
    assert Path(r.stdout.strip()).read_bytes() == plugin_binary.read_bytes()


def test_cache_key_follows_sources_arguments_and_paths(tmp_path: Path) -> None:
    onefile = onefile_module()
    (tmp_path / "pkg").mkdir()
    source = tmp_path / "pkg" / "a.py"
    source.write_text("x = 1\n")
    files = [source]
    key = onefile.input_hash(tmp_path, files, ["kubectl-meshcfg"])
    assert onefile.input_hash(tmp_path, files, ["kubectl-meshcfg"]) == key
    assert onefile.input_hash(tmp_path, files, ["kubectl-meshcfg", "--onedir"]) != key
    source.write_text("x = 2\n")
    assert onefile.input_hash(tmp_path, files, ["kubectl-meshcfg"]) != key
    source.write_text("x = 1\n")
    moved = tmp_path / "pkg" / "b.py"
    source.rename(moved)
    assert onefile.input_hash(tmp_path, [moved], ["kubectl-meshcfg"]) != key


def test_hidden_imports_are_import_module_literals(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text('import importlib\nm = importlib.import_module("a.b_c")\n'
                      "n = importlib.import_module( 'd' )\nimportlib.import_module(name)\n")
    (tmp_path / "data.txt").write_text('import_module("not.python")')
    assert onefile_module().hidden_imports([source, tmp_path / "data.txt"]) == ["a.b_c", "d"]
