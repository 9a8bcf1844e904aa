"""Exit statuses (SPEC section 3) and the errors every layer raises.

`cli.MeshcfgGroup.main` is the one place that turns them into a process exit.
API errors (typed by HTTP status) are in `kube/errors.py`, derived from `MeshcfgError`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ExitStatus(enum.IntEnum):
    OK = 0
    ERROR = 1       # runtime, API or invalid-input error
    USAGE = 2       # usage error (click's own usage errors also exit 2)
    FOUND = 3       # the check found something: lint found warnings, diff found changes


class MeshcfgError(Exception):
    """An error reported as one line on stderr, exit status 1."""

    exit_status = ExitStatus.ERROR

    def lines(self) -> list[str]:
        message = str(self)
        return [message if message.startswith("error:") else f"error: {message}"]


@dataclass(frozen=True)
class Location:
    """Where an input problem is: file, document (1-based), object, field path."""

    file: str
    document: int | None = None
    obj: str | None = None          # "Kind namespace/name"
    field: str | None = None        # "spec.traffic.excludeInboundPorts"

    def describe(self) -> str:
        parts = [self.file]
        if self.document is not None:
            parts.append(f"document {self.document}")
        if self.obj:
            parts.append(self.obj)
        if self.field:
            parts.append(self.field)
        return ": ".join(parts)


Problem = tuple[Location, str]


class InvalidInput(MeshcfgError):
    """One or more documents are invalid; every problem is one line."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(f"{loc.describe()}: {reason}" for loc, reason in problems))

    def lines(self) -> list[str]:
        return [f"error: {loc.describe()}: {reason}" for loc, reason in self.problems]


class UsageError(MeshcfgError):
    exit_status = ExitStatus.USAGE


class NotFound(MeshcfgError):
    pass


class CheckFound(Exception):
    """Not an error: lint/diff found something (exit status 3)."""

    exit_status = ExitStatus.FOUND


class Failed(Exception):
    """Not an error of its own: the command already reported what failed (exit status 1)."""

    exit_status = ExitStatus.ERROR
