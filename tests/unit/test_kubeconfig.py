"""kubeconfig loading with kubectl's rules (client-go): file lists, first definition wins,
first current-context wins, relative paths, the context's namespace."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml
from builders import kube_context

from kubectl_meshcfg.kube.kubeconfig import KubeconfigError, kubeconfig_paths, load_access


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def cluster(name: str, server: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "cluster": {"server": server, **extra}}


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    (tmp_path / "a").mkdir()
    a = write(tmp_path / "a" / "config", {
        "clusters": [cluster("c1", "https://one:6443", **{"certificate-authority": "ca.crt"})],
        "users": [{"name": "u1", "user": {"token": "t1", "client-key": "k/key.pem"}}],
        "contexts": [kube_context("first", "c1", "u1", "ns-a")],
        "current-context": "first"})
    b = write(tmp_path / "b.yaml", {
        "clusters": [cluster("c1", "https://ignored:1"), cluster("c2", "https://two:6443/")],
        "users": [{"name": "u2", "user": {"tokenFile": "/abs/token"}}],
        "contexts": [kube_context("second", "c2", "u2"), kube_context("first", "c2", "u2", "ignored")],
        "current-context": "second"})
    monkeypatch.setenv("KUBECONFIG", f"{a}:{tmp_path / 'missing'}::{b}:{a}")
    return a, b


def test_first_file_wins_names_and_current_context(files: tuple[Path, Path]) -> None:
    a, _ = files
    access = load_access(None, None)
    assert access.context == "first"
    assert access.server == "https://one:6443"
    assert access.namespace == "ns-a"
    assert access.token == "t1"
    # Relative paths are relative to the file that holds them.
    assert access.ca_file == str(a.parent / "ca.crt")
    assert access.key_file == str(a.parent / "k" / "key.pem")


def test_context_flag_and_default_namespace(files: tuple[Path, Path]) -> None:
    access = load_access(None, "second")
    assert (access.server, access.namespace, access.token_file) == (
        "https://two:6443", "default", "/abs/token")


def test_missing_files_are_skipped_duplicates_dropped(files: tuple[Path, Path]) -> None:
    a, b = files
    assert kubeconfig_paths(None) == [str(a), str(b)]


def test_explicit_kubeconfig_only_that_file(files: tuple[Path, Path]) -> None:
    _, b = files
    assert load_access(str(b), None).context == "second"
    with pytest.raises(KubeconfigError, match="no such file"):
        load_access(str(b) + ".nope", None)


def test_unknown_context_and_no_context(files: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError, match='context "nope" does not exist'):
        load_access(None, "nope")
    empty = write(tmp_path / "empty.yaml", {"clusters": []})
    with pytest.raises(KubeconfigError, match="no current context"):
        load_access(str(empty), None)


def test_embedded_data_is_decoded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    data = base64.b64encode(b"PEM").decode()
    path = write(tmp_path / "c", {
        "clusters": [cluster("c", "https://x", **{"certificate-authority-data": data,
                                                  "insecure-skip-tls-verify": True})],
        "users": [{"name": "u", "user": {"client-certificate-data": data,
                                         "client-key-data": data}}],
        "contexts": [kube_context("c", "c", "u")], "current-context": "c"})
    access = load_access(str(path), None)
    assert access.ca_data == access.cert_data == access.key_data == b"PEM"
    assert access.insecure


def test_empty_env_falls_back_to_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", "")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert kubeconfig_paths(None) == []
    (tmp_path / ".kube").mkdir()
    write(tmp_path / ".kube" / "config", {"current-context": ""})
    assert kubeconfig_paths(None) == [str(tmp_path / ".kube" / "config")]
