"""Hostile and odd input (issue 12): alias bombs, sizes, depth, encodings kubectl accepts,
and errors that stay one readable line with kubectl's reading of YAML 1.1 scalars."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubectl_meshcfg.cli import cli
from kubectl_meshcfg.core import bounded

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ROOT = Path(__file__).resolve().parents[2]

ALIAS_BOMB = "\n".join([
    "apiVersion: meshcfg.io/v1alpha1",
    "kind: SidecarProxyConfig",
    "metadata: {name: bomb, namespace: dev}",
    'a0: &a0 ["x","x","x","x","x","x","x","x","x"]',
    *(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)),
    "spec: {proxy: {concurrency: *a9}}",
]) + "\n"


def run(*args: str, input: str | bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=input)
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


BOUNDED_RUN = textwrap.dedent("""
    import resource, sys, time
    resource.setrlimit(resource.RLIMIT_AS, (768 * 2**20, 768 * 2**20))
    from kubectl_meshcfg.cli import cli
    start = time.monotonic()
    try:
        cli.main(sys.argv[1:], prog_name="kubectl-meshcfg")
    except SystemExit as exit:
        print(f"{exit.code} {time.monotonic() - start:.3f}")
""")


@pytest.mark.parametrize("command", [["explain", "--local"], ["lint", "--local"],
                                     ["apply", "--dry-run=client"]])
def test_alias_bomb_is_refused_within_a_second_in_bounded_memory(
        tmp_path: Path, command: list[str]) -> None:
    assert len(ALIAS_BOMB) < 1200
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(ALIAS_BOMB)
    proc = subprocess.run([sys.executable, "-c", BOUNDED_RUN, *command, "-f", str(bomb)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    code, elapsed = proc.stdout.split()
    assert code == "1", proc.stderr
    assert float(elapsed) < 1.0
    line = one_line(proc.stderr)
    assert str(bomb) in line and "document 1" in line and "excessive aliasing" in line


def test_aliases_kubectl_allows_still_load(tmp_path: Path) -> None:
    doc = (EXAMPLES / "10-dev.yaml").read_text().replace(
        "requests: {cpu: 50m, memory: 64Mi}", "requests: &r {cpu: 50m, memory: 64Mi}")
    doc = doc.replace("limits: {cpu: 100m, memory: 50Mi}", "limits: *r")
    path = tmp_path / "dev.yaml"
    path.write_text(doc)
    code, out, err = run("explain", "deployment/web", "-n", "dev", "--local", "-f", str(path),
                         "-o", "json")
    assert code == 0, err
    assert json.loads(out)["fields"]["init.resources.limits.cpu"]["value"] == "50m"


def test_excessive_aliasing_follows_go_yaml_ratio() -> None:
    assert bounded.allowed_alias_ratio(1000) == 0.99
    assert bounded.allowed_alias_ratio(4_000_000) == pytest.approx(0.10)
    assert bounded.allowed_alias_ratio(2_200_000) == pytest.approx(0.545)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_byte_order_marks_are_read_as_kubectl_reads_them(tmp_path: Path, encoding: str) -> None:
    text = (EXAMPLES / "10-dev.yaml").read_text(encoding="utf-8")
    plain, marked = tmp_path / "plain.yaml", tmp_path / "marked.yaml"
    plain.write_text(text, encoding="utf-8")
    marked.write_bytes(text.encode(encoding))
    assert marked.read_bytes()[:2] in (b"\xef\xbb", b"\xff\xfe", b"\xfe\xff")
    expected = run("explain", "-n", "dev", "--local", "-f", str(plain), "-o", "json")
    got = run("explain", "-n", "dev", "--local", "-f", str(marked), "-o", "json")
    assert "debug-shell" in expected[1]
    assert got[0] == 0, got[2]
    assert json.loads(got[1]) == json.loads(expected[1])


def test_a_latin1_byte_in_a_comment_is_harmless(tmp_path: Path) -> None:
    path = tmp_path / "dev.yaml"
    path.write_bytes(b"# caf\xe9\n" + (EXAMPLES / "10-dev.yaml").read_bytes())
    code, _, err = run("lint", "--local", "-f", str(path))
    assert code in (0, 3), err


def test_a_byte_that_is_not_utf8_in_a_value_names_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"apiVersion: meshcfg.io/v1alpha1\nkind: SidecarProxyConfig\n"
                     b"metadata: {name: x, namespace: dev}\nspec: {proxy: {logLevel: inf\xffo}}\n")
    code, out, err = run("explain", "--local", "-f", str(path))
    line = one_line(err)
    assert code == 1 and out == ""
    assert f"{path}: document 1: spec.proxy.logLevel: " in line and "UTF-8" in line
    assert "UnicodeDecodeError" not in line


def spc(spec: str, name: str = "x", namespace: str = "dev") -> str:
    return (f"apiVersion: meshcfg.io/v1alpha1\nkind: SidecarProxyConfig\n"
            f"metadata: {{name: {name}, namespace: {namespace}}}\nspec: {spec}\n")


def test_a_huge_name_is_cut_in_the_one_line(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text(spc("{}", name="a" * 1_000_000))
    code, _, err = run("apply", "--dry-run=client", "-f", str(path))
    line = one_line(err)
    assert code == 1 and len(line) < 600
    assert "metadata.name" in line and "1000000 characters" in line


def test_a_value_over_the_limit_names_field_and_limit(tmp_path: Path) -> None:
    path = tmp_path / "long.yaml"
    path.write_text(spc("{proxy: {logLevel: " + "x" * (bounded.MAX_VALUE + 1) + "}}"))
    code, _, err = run("lint", "--local", "-f", str(path))
    line = one_line(err)
    assert code == 1 and len(line) < 400
    assert f"{path}: document 1: spec.proxy.logLevel: " in line
    assert f"the limit is {bounded.MAX_VALUE}" in line


def test_a_document_over_the_limit_names_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    lines = "".join(f"    k{i}: {'v' * 1000}\n" for i in range(3200))
    path.write_text(spc("\n  proxy:\n   proxyMetadata:\n" + lines))
    code, _, err = run("explain", "--local", "-f", str(path))
    line = one_line(err)
    assert code == 1 and f"larger than {bounded.MAX_DOCUMENT} bytes" in line and str(path) in line


@pytest.mark.parametrize("opening", ["[", "{a: "])
@pytest.mark.parametrize("depth", [bounded.MAX_DEPTH + 5, 5000])
def test_deep_nesting_is_one_line(tmp_path: Path, opening: str, depth: int) -> None:
    closing = "]" if opening == "[" else "}"
    path = tmp_path / "deep.yaml"
    path.write_text(spc(opening * depth + closing * depth))
    code, _, err = run("lint", "--local", "-f", str(path))
    line = one_line(err)
    assert code == 1 and str(path) in line
    assert (f"nested deeper than {bounded.MAX_DEPTH}" in line if depth < 1000
            else "nesting depth" in line)


@pytest.mark.parametrize(("written", "read"), [("yes", "true"), ("n", "false"), ("On", "true"),
                                               ("True", "true"), ("NO", "false")])
def test_yaml11_booleans_are_reported_as_written_and_as_kubectl_reads_them(
        tmp_path: Path, written: str, read: str) -> None:
    path = tmp_path / "b.yaml"
    path.write_text(spc(f"{{proxy: {{concurrency: {written}}}}}"))
    code, _, err = run("apply", "--dry-run=client", "-f", str(path))
    line = one_line(err)
    assert code == 1
    assert f"spec.proxy.concurrency: {read} is not an integer (you wrote {written}, " in line
    assert f'quote it, "{written}"' in line
    assert "True" not in line.replace(f"wrote {written}", "").replace(f'"{written}"', "")


def test_a_boolean_name_is_not_spelled_the_python_way(tmp_path: Path) -> None:
    path = tmp_path / "n.yaml"
    path.write_text(spc("{}", name="n", namespace="adv"))
    code, _, err = run("lint", "--local", "-f", str(path))
    line = one_line(err)
    assert code == 1
    assert "adv/false" in line and "False" not in line
    assert "metadata.name: false is not a valid object name (you wrote n, " in line


def test_a_yaml11_label_value_on_a_workload_names_the_label(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: adv}\n"
                    "spec:\n  template:\n    metadata:\n      labels: {canary: on}\n")
    code, _, err = run("explain", "--local", "-f", str(path))
    line = one_line(err)
    assert code == 1
    assert line.endswith("Deployment adv/d: spec.template.metadata.labels.canary: true is not a "
                         "string: quote label values (you wrote on, which kubectl reads as the "
                         'boolean true; quote it, "on", to mean the word)')


BOMB_TEXT = "\n".join(['a0: &a0 ["x","x","x","x","x","x","x","x","x"]',
                       *(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]"
                         for i in range(1, 10))])


def test_an_alias_bomb_in_the_proxy_config_annotation_is_an_ignored_annotation() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "p", "namespace": "dev", "annotations": {"proxy.istio.io/config": BOMB_TEXT}},
        "spec": {"containers": []}}
    code, out, err = run("explain", "pod/p", "-n", "dev", "--local", "-f", "-", "-o", "json",
                         input=json.dumps(pod))
    assert code == 0, err
    [warning] = [w for w in json.loads(out)["warnings"] if w["code"] == "InvalidAnnotation"]
    assert "excessive aliasing" in warning["message"]


def test_an_alias_bomb_in_the_mesh_config_names_the_configmap() -> None:
    mesh = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "istio", "namespace": "istio-system"},
            "data": {"mesh": BOMB_TEXT}}
    code, _, err = run("lint", "--local", "-f", "-", input=json.dumps(mesh))
    line = one_line(err)
    assert code == 1
    assert "ConfigMap istio-system/istio: data.mesh: invalid YAML: " in line
    assert "excessive aliasing" in line


@pytest.mark.parametrize("key", ["a\x1eb", "x\u2028y", "tab\there"])
def test_a_control_character_in_a_key_stays_one_escaped_line(key: str) -> None:
    document = json.dumps({"apiVersion": "meshcfg.io/v1alpha1", "kind": "SidecarProxyConfig",
                           "metadata": {"name": "j", "namespace": "dev"}, "spec": {key: 1}})
    code, _, err = run("lint", "--local", "-n", "dev", "-f", "-", input=document)
    line = one_line(err)
    assert code == 1 and f"spec.{ascii(key)[1:-1]}: unknown field" in line


@pytest.mark.parametrize("command", [["explain", "--local"], ["lint", "--local"],
                                     ["apply", "--dry-run=client"]])
def test_a_namespace_kubernetes_refuses_is_refused_everywhere(command: list[str]) -> None:
    code, _, err = run(*command, "-f", "-", input=spc("{}", namespace="Dev"))
    assert code == 1 and "metadata.namespace: 'Dev' is not a valid namespace" in one_line(err)
