"""How meshcfg authenticates to the API server: bearer tokens (inline, tokenFile, exec
credential plugins), client certificates, basic auth, and the TLS context."""

from __future__ import annotations

import atexit
import base64
import contextlib
import importlib
import os
import ssl
import tempfile
from dataclasses import dataclass, field
from typing import Any

from .kubeconfig import ClusterAccess, KubeconfigError


@dataclass
class Credentials:
    """Request headers and client certificate files for one ClusterAccess."""

    headers: dict[str, str]
    cert_file: str | None = None
    key_file: str | None = None
    temp_files: list[str] = field(default_factory=list)


def credentials(access: ClusterAccess) -> Credentials:
    headers = {"Accept": "application/json", "User-Agent": "kubectl-meshcfg"}
    found = Credentials(headers, access.cert_file, access.key_file)
    token = access.token
    if access.auth_provider and not token:
        raise KubeconfigError(
            f'{access.describe()}: auth-provider "{access.auth_provider}" is not '
            "supported; use an exec credential plugin (users[].user.exec) instead")
    if access.exec_config and not token and not (found.cert_file or access.cert_data):
        token, exec_cert, exec_key = _run_exec_plugin(access)
        if exec_cert and exec_key:
            found.cert_file, found.key_file = _temp(found, exec_cert), _temp(found, exec_key)
    if token is None and access.token_file:
        token = _read_token_file(access.token_file)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif access.username is not None and access.password is not None:
        basic = base64.b64encode(f"{access.username}:{access.password}".encode()).decode()
        headers["Authorization"] = f"Basic {basic}"
    if not found.cert_file and access.cert_data:
        found.cert_file = _temp(found, access.cert_data)
    if not found.key_file and access.key_data:
        found.key_file = _temp(found, access.key_data)
    return found


def _read_token_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError as error:
        raise KubeconfigError(f"cannot read tokenFile {path}: {error.strerror}") from None


def ssl_context(access: ClusterAccess, found: Credentials) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if access.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif access.ca_data:
        context.load_verify_locations(cadata=access.ca_data.decode("utf-8", "replace"))
    elif access.ca_file:
        try:
            context.load_verify_locations(cafile=access.ca_file)
        except OSError as error:
            raise KubeconfigError(f"cannot read certificate-authority {access.ca_file}: "
                                  f"{error.strerror}") from None
    if found.cert_file:
        try:
            context.load_cert_chain(found.cert_file, found.key_file)
        except (OSError, ssl.SSLError) as error:
            raise KubeconfigError(f"{access.describe()}: cannot load the client "
                                  f"certificate: {error}") from None
    return context


def _temp(found: Credentials, data: bytes) -> str:
    """A private file for PEM data the ssl module can only read from a path."""
    handle, path = tempfile.mkstemp(prefix="meshcfg-", suffix=".pem")
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    found.temp_files.append(path)
    atexit.register(_remove, path)
    return path


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _run_exec_plugin(access: ClusterAccess) -> tuple[str | None, bytes | None, bytes | None]:
    """Run the kubeconfig's exec credential plugin with the kubernetes client's runner
    (imported only here: importing the client costs most of a second)."""
    exec_provider: Any = importlib.import_module("kubernetes.config.exec_provider")
    kube_config: Any = importlib.import_module("kubernetes.config.kube_config")
    assert access.exec_config is not None
    try:
        status = exec_provider.ExecProvider(
            kube_config.ConfigNode("exec", dict(access.exec_config)), access.exec_dir,
            kube_config.ConfigNode("cluster", {"server": access.server})).run()
    except (exec_provider.ConfigException, OSError) as error:
        raise KubeconfigError(f"{access.describe()}: exec credential plugin failed: "
                              f"{' '.join(str(error).split())}") from None
    token = status.get("token")
    cert = status.get("clientCertificateData")
    key = status.get("clientKeyData")
    return (str(token) if token else None, cert.encode() if cert else None,
            key.encode() if key else None)
