"""The few Kubernetes API calls the agent makes, with urllib and ssl only."""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def default_server() -> str | None:
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        return None
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"https://{host}:{port}"


class ApiError(Exception):
    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status


class KubeApi:
    def __init__(self, server: str, token_file: str, ca_file: str, timeout: float) -> None:
        self.server = server.rstrip("/")
        self.token_file = token_file
        self.timeout = timeout
        ctx = ssl.create_default_context()
        if os.path.exists(ca_file):
            ctx = ssl.create_default_context(cafile=ca_file)
        self.ssl = ctx

    def _token(self) -> str | None:
        # Re-read at each call: projected tokens are rotated on disk.
        try:
            with open(self.token_file, encoding="utf-8") as fh:
                return fh.read().strip()
        except OSError:
            return None

    def request(
        self, method: str, path: str, body: Any = None, timeout: float | None = None
    ) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        token = self._token()
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(
                req, timeout=self.timeout if timeout is None else timeout, context=self.ssl
            ) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            try:
                msg = json.loads(e.read()).get("message", e.reason)
            except (ValueError, OSError, AttributeError):
                msg = str(e.reason)
            raise ApiError(e.code, str(msg)) from None
        except (OSError, ValueError) as e:  # URLError, timeouts, TLS, bad JSON
            raise ApiError(None, str(e)) from None

    def get_pod(self, namespace: str, name: str) -> dict[str, Any]:
        path = f"/api/v1/namespaces/{_q(namespace)}/pods/{_q(name)}"
        pod = self.request("GET", path)
        if not isinstance(pod, dict):
            raise ApiError(None, "unexpected pod response")
        return pod

    def create_event(self, namespace: str, event: dict[str, Any], timeout: float) -> None:
        self.request("POST", f"/api/v1/namespaces/{_q(namespace)}/events", event, timeout)


def _q(s: str) -> str:
    return urllib.parse.quote(s, safe="")
