"""The bad-document corpus through the CLI: each file gives exit 1 and exactly one stderr
line naming the file, the document index, the object and the field path; stdout stays
empty. Also: one bad document among good ones fails the whole load (as `apply` would)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from corpuslib import BadDocument, bad_documents

from kubectl_meshcfg.cli import cli

DOCS = bad_documents()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=input)
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_corpus_is_not_empty() -> None:
    assert len(DOCS) >= 25


@pytest.mark.parametrize("doc", DOCS, ids=[d.id for d in DOCS])
@pytest.mark.parametrize("command", ["explain", "lint", "get"])
def test_bad_document_one_line_exit_1(doc: BadDocument, command: str) -> None:
    code, out, err = run(command, "--local", "-f", str(doc.path))
    assert code == 1, (out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("error: "), line
    assert str(doc.path) in line
    for fragment in doc.fragments:
        assert fragment in line, (fragment, line)
    assert "Traceback" not in err


@pytest.mark.parametrize("doc", DOCS[:5], ids=[d.id for d in DOCS[:5]])
def test_bad_document_from_stdin_is_named_dash(doc: BadDocument) -> None:
    code, out, err = run("explain", "--local", "-f", "-",
                         input=doc.path.read_text(encoding="utf-8"))
    assert code == 1 and out == ""
    [line] = err.splitlines()
    assert line.startswith("error: -: ")
    for fragment in doc.fragments:
        if fragment != doc.path.name:
            assert fragment in line, (fragment, line)


def test_one_bad_document_fails_a_directory_of_good_ones(tmp_path: Path) -> None:
    """--local input is validated as apply validates it: nothing is explained."""
    for example in sorted(EXAMPLES.glob("*.yaml")):
        shutil.copy(example, tmp_path / example.name)
    good_code, good_out, _ = run("explain", "--local", "-f", str(tmp_path), "-o", "json")
    assert good_code == 0 and good_out
    bad = next(d for d in DOCS if d.path.name.startswith("04-"))
    shutil.copy(bad.path, tmp_path / "zz-bad.yaml")
    code, out, err = run("explain", "--local", "-f", str(tmp_path), "-o", "json")
    assert code == 1 and out == ""
    [line] = err.splitlines()
    assert "zz-bad.yaml: document 3: SidecarProxyConfig default/bad-port: " in line
    assert "spec.traffic.excludeInboundPorts" in line


def test_verbose_still_names_the_field() -> None:
    doc = DOCS[1]
    code, _, err = run("-v", "explain", "--local", "-f", str(doc.path))
    assert code == 1
    assert any(fragment in err for fragment in doc.fragments)
