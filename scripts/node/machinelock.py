"""One node per machine: a machine-wide mutex that leaves nothing on the host.

A name in the abstract Unix-socket namespace can be bound by one socket at a time and
disappears with the process holding it. A lock file under the cache directory did not do:
two sessions with different XDG_CACHE_HOME each took their own file, and one tore down the
other's node while that one's test had SIGKILLed its kubelet on purpose.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import time
from collections.abc import Iterator

NAME = b"\0meshcfg-node-machine-lock"


@contextlib.contextmanager
def held(name: bytes = NAME, interval: float = 0.2) -> Iterator[None]:
    """Hold the machine's node lock for the body; wait while another process holds it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        while True:
            try:
                sock.bind(name)
                break
            except OSError as e:
                if e.errno != errno.EADDRINUSE:
                    raise
            time.sleep(interval)
        yield
    finally:
        sock.close()
