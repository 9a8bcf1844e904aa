"""Error types of kubectl meshcfg and the one place that maps them to exit codes."""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_ERROR = 1       # runtime, API or invalid-input error
EXIT_USAGE = 2       # usage error (click's own usage errors also exit 2)
EXIT_FOUND = 3       # the check found something: lint found warnings, diff found changes


class MeshcfgError(Exception):
    """An error reported as one line on stderr, exit code 1."""

    exit_code = EXIT_ERROR


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


class InvalidInput(MeshcfgError):
    """One or more documents are invalid; every problem is one line."""

    def __init__(self, problems: list[tuple[Location, str]]):
        self.problems = problems
        super().__init__("\n".join(f"{loc.describe()}: {reason}" for loc, reason in problems))

    def lines(self) -> list[str]:
        return [f"error: {loc.describe()}: {reason}" for loc, reason in self.problems]


class UsageError(MeshcfgError):
    exit_code = EXIT_USAGE


class NotFound(MeshcfgError):
    pass


class ApiError(MeshcfgError):
    """The Kubernetes API refused or could not be reached; message is already one line."""


# The API failures `kube.py` reports (each one line naming verb, resource, namespace, object;
# all exit 1). Distinct types so that callers and tests can tell them apart.
class Unreachable(ApiError):
    """No connection to the API server (refused, timed out, TLS failure)."""


class Unauthorized(ApiError):
    """401: the credentials were rejected."""


class Forbidden(ApiError):
    """403: RBAC denied the verb on the resource in the namespace."""


class ApplyConflict(ApiError):
    """409: server-side apply conflicts with fields owned by another field manager."""


class CrdMissing(ApiError):
    """The SidecarProxyConfig CRD is not installed."""


class CheckFound(Exception):
    """Not an error: lint/diff found something. Carries the exit code 3."""

    exit_code = EXIT_FOUND


def exit_code_for(error: BaseException) -> int:
    if isinstance(error, MeshcfgError | CheckFound):
        return error.exit_code
    return EXIT_ERROR
