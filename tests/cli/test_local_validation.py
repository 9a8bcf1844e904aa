"""`--local` validates as apply and the API server do: duplicates, unknown kinds of
meshcfg's group and wrongly typed metadata are errors naming file, document and object."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from kubectl_meshcfg.cli import cli

SPC = """apiVersion: meshcfg.io/v1alpha1
kind: {kind}
metadata: {{name: {name}, namespace: ai{extra}}}
spec: {{proxy: {{concurrency: {value}}}}}
"""


def write(tmp_path: Path, *docs: str) -> Path:
    path = tmp_path / "in.yaml"
    path.write_text("---\n".join(docs))
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def spc(name: str = "a", value: int = 2, kind: str = "SidecarProxyConfig", extra: str = "") -> str:
    return SPC.format(name=name, value=value, kind=kind, extra=extra)


@pytest.mark.parametrize("command", ["explain", "lint", "get", "render"])
def test_two_objects_with_one_name_are_an_error_not_competitors(tmp_path: Path,
                                                                 command: str) -> None:
    path = write(tmp_path, spc(value=2), spc(value=3))
    code, out, err = run(command, "-A", "--local", "-f", str(path))
    assert code == 1
    assert out == ""
    assert err == (f"error: {path}: document 2: SidecarProxyConfig ai/a: ai/a is also in "
                   f"{path}: document 1; keep one\n")


def test_an_unknown_kind_of_our_group_is_an_error_for_local_and_apply(tmp_path: Path) -> None:
    path = write(tmp_path, spc(kind="SidecarProxyConf"))
    for args in (["explain", "-A", "--local", "-f", str(path)],
                 ["apply", "--dry-run=client", "-f", str(path)]):
        code, out, err = run(*args)
        assert code == 1, args
        assert "document 1: SidecarProxyConf ai/a: kind: 'SidecarProxyConf' is not " \
               "SidecarProxyConfig" in err, err


@pytest.mark.parametrize("extra", [", labels: {team: 1}", ", annotations: [a]",
                                   ", labels: {on: yes}"])
def test_metadata_labels_and_annotations_must_be_maps_of_strings(tmp_path: Path,
                                                                extra: str) -> None:
    path = write(tmp_path, spc(extra=extra))
    code, _, err = run("explain", "-A", "--local", "-f", str(path))
    assert code == 1
    assert err.count("\n") == 1
    assert "document 1: SidecarProxyConfig ai/a: metadata." in err
    assert "must be a map of strings" in err
