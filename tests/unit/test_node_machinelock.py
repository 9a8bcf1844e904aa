"""The node's machine-wide lock: one holder at a time, released with its holder, no file."""

from __future__ import annotations

import subprocess
import sys
import uuid

from nodelib import machinelock


def bind_from_another_process(name: bytes) -> int:
    """0 when a separate process can take the lock at once, 1 when it is held."""
    probe = ("import socket, sys\n"
             "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
             f"try:\n    s.bind({name!r})\nexcept OSError:\n    sys.exit(1)\n")
    return subprocess.run([sys.executable, "-c", probe], check=False).returncode


def test_a_held_lock_is_refused_to_other_processes_and_free_after() -> None:
    name = b"\0meshcfg-test-lock-" + uuid.uuid4().hex.encode()
    assert bind_from_another_process(name) == 0
    with machinelock.held(name):
        assert bind_from_another_process(name) == 1
    assert bind_from_another_process(name) == 0


def test_a_killed_holder_leaves_the_lock_free() -> None:
    name = b"\0meshcfg-test-lock-" + uuid.uuid4().hex.encode()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import socket, sys\n"
         "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
         f"s.bind({name!r})\nprint('held', flush=True)\nsys.stdin.read()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    holder.kill()
    holder.wait()
    with machinelock.held(name):
        assert bind_from_another_process(name) == 1

