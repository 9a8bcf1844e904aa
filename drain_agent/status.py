"""The agent's exit statuses: the only exit codes ``meshcfg-drain`` uses."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0  # install, census
    DRAINED = 0  # nothing (or only idle keep-alives) in flight
    TIMED_OUT = 1  # the deadline came first, or there was no budget at all
    USAGE = 2  # bad flag or flag value
    INTERRUPTED = 3  # SIGTERM/SIGINT during the drain
    PROXY_GONE = 4  # a proxy process exited mid-drain: what was in flight got no answer
