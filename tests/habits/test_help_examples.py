"""Every command's --help has an Examples section, as kubectl's does, and every example
parses: its flags and values exist (a renamed flag breaks this test, not the reader)."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest

from kubectl_meshcfg.cli import cli

MESHCFG = str(Path(sys.executable).parent / "kubectl-meshcfg")
COMMANDS = sorted(cli.commands)


def help_text(*command: str) -> str:
    r = subprocess.run([MESHCFG, *command, "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def example_lines(text: str) -> list[str]:
    section = text.split("  Examples:\n", 1)[1].split("\nOptions:\n", 1)[0]
    return [line.strip() for line in section.splitlines() if line.strip()]


@pytest.mark.parametrize("command", [[], *[[c] for c in COMMANDS]], ids=["root", *COMMANDS])
def test_help_has_examples_that_parse(command: list[str]) -> None:
    lines = example_lines(help_text(*command))
    comments = [line for line in lines if line.startswith("#")]
    runs = [line for line in lines if not line.startswith(("#", "ln "))]
    assert comments and runs, lines
    for line in runs:
        # the meshcfg part of a pipeline, without process substitution or redirection
        piece = next(p for p in line.split("|") if "meshcfg " in p)
        piece = piece.replace("<(", "").replace(")", "").split(" > ")[0]
        words = shlex.split(piece, comments=True)
        start = next(i for i, w in enumerate(words) if w in ("meshcfg", "kubectl-meshcfg"))
        argv = words[start + 1:]
        assert argv[0] in COMMANDS, line
        if command:
            assert argv[0] == command[0], line
        sub = cli.commands[argv[0]]
        sub.make_context(argv[0], argv[1:], parent=click.Context(cli, info_name="kubectl-meshcfg"))


def test_every_command_is_listed() -> None:
    listed = help_text().split("\nCommands:\n", 1)[1]
    assert [line.split()[0] for line in listed.splitlines() if line.strip()] == COMMANDS
    assert isinstance(cli, click.Group)
