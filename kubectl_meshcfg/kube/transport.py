"""Raw JSON requests to one API server over a pooled HTTPS connection (urllib3).

The `kubernetes` client's per-object models are far too slow for 10,000 pods, and
importing the client alone costs most of a second, so reads and writes are plain HTTP
here (the client runs only exec credential plugins, in `auth.py`). Every request is
counted (`Api.requests`); with `MESHCFG_TRACE_API=1` each one is logged to stderr
(`I0000 GET https://... 200 OK in 12 ms`, like `kubectl -v=6`) and a summary line
`meshcfg: N API requests` ends the run. Failures become the typed errors of `errors.py`.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from . import auth
from .errors import ApiError, api_error, unreachable
from .kubeconfig import ClusterAccess
from .resources import Call, Resource

if TYPE_CHECKING:
    import urllib3

DEFAULT_PAGE_SIZE = 500     # kubectl's chunk size


class Api:
    """Raw JSON requests to one API server, counted and mapped to one-line errors."""

    def __init__(self, access: ClusterAccess, timeout: float = 60.0, connections: int = 8,
                 environ: Mapping[str, str] | None = None):
        environ = os.environ if environ is None else environ
        self.access = access
        self.connections = connections
        self.timeout = timeout
        self.page_size = int(environ.get("MESHCFG_PAGE_SIZE", str(DEFAULT_PAGE_SIZE)))
        self.requests = 0
        self.trace = environ.get("MESHCFG_TRACE_API", "") not in ("", "0")
        self._lock = threading.Lock()
        self._pool: urllib3.PoolManager | None = None
        self._headers: dict[str, str] = {}
        if self.trace:
            atexit.register(self._summary)

    def _connect(self) -> urllib3.PoolManager:
        with self._lock:
            if self._pool is None:
                self._pool = self._make_pool()
            return self._pool

    def _make_pool(self) -> urllib3.PoolManager:
        import urllib3  # noqa: PLC0415

        access = self.access
        found = auth.credentials(access)
        self._headers = found.headers
        kwargs: dict[str, Any] = {"maxsize": self.connections, "retries": False, "block": False}
        if access.server.startswith("https://"):
            kwargs["ssl_context"] = auth.ssl_context(access, found)
            if access.tls_server_name:
                kwargs["server_hostname"] = access.tls_server_name
            if access.insecure:
                kwargs["cert_reqs"] = "CERT_NONE"
                urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        if access.proxy_url:
            return urllib3.ProxyManager(access.proxy_url, **kwargs)
        return urllib3.PoolManager(**kwargs)

    def request(self, method: str, call: Call, path: str, query: Mapping[str, str] | None = None,
                body: bytes | None = None, content_type: str | None = None,
                missing_ok: bool = False) -> Any:
        """One request; returns the decoded JSON (None for a 404 when missing_ok)."""
        response = self._send(method, call, path, query, body=body, content_type=content_type,
                              missing_ok=missing_ok)
        if response is None:
            return None
        try:
            return json.loads(response.data)
        except ValueError:
            raise ApiError(f"error: the API server at {self.access.server} answered {method} "
                           f"{path} with something that is not JSON") from None

    def open_stream(self, call: Call, path: str, query: Mapping[str, str]) -> Any:
        """A GET whose body is read as it arrives (a watch, a log): the urllib3 response,
        which the caller reads line by line and closes (`shutdown()` from another thread
        ends a blocked read)."""
        return self._send("GET", call, path, query, stream=True)

    def text(self, call: Call, path: str, query: Mapping[str, str] | None = None) -> str:
        """A GET whose answer is text, not JSON (a container's log)."""
        return bytes(self._send("GET", call, path, query).data).decode("utf-8", "replace")

    def _send(self, method: str, call: Call, path: str, query: Mapping[str, str] | None,
              body: bytes | None = None, content_type: str | None = None,
              stream: bool = False, missing_ok: bool = False) -> Any:
        """Send one request, counted and logged; the urllib3 response (None for a 404 when
        missing_ok). An error status raises its typed error. A streamed response has no
        read timeout and is not preloaded."""
        import urllib3  # noqa: PLC0415

        pool = self._connect()
        url = self.access.server + path + (f"?{urlencode(query)}" if query else "")
        headers = dict(self._headers)
        if content_type:
            headers["Content-Type"] = content_type
        started = time.monotonic()
        with self._lock:
            self.requests += 1
        try:
            response = pool.request(
                method, url, body=body, headers=headers,
                timeout=urllib3.Timeout(connect=10.0, read=None if stream else self.timeout),
                preload_content=not stream, redirect=False)
        except urllib3.exceptions.HTTPError as error:
            self._log(method, url, "failed", started)
            raise unreachable(self.access, error) from error
        self._log(method, url, f"{response.status} {response.reason or ''}".strip(), started)
        if response.status < 400:
            return response
        data = response.read() if stream else response.data
        if stream:
            response.release_conn()
        if response.status == 404 and missing_ok:
            return None
        raise api_error(response.status, data, call, self.access)

    def get(self, call: Call, missing_ok: bool = False) -> Any:
        path = call.resource.path(call.namespace, call.name)
        return self.request("GET", call, path, missing_ok=missing_ok)

    def list(self, resource: Resource, namespace: str | None,
             label_selector: str | None = None) -> list[dict[str, Any]]:
        """Every object of a kind, in pages of page_size; `namespace=None` = cluster-wide."""
        call = Call("list", resource, namespace)
        path = resource.path(namespace)
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            query = {"limit": str(self.page_size)}
            if token:
                query["continue"] = token
            if label_selector:
                query["labelSelector"] = label_selector
            page = self.request("GET", call, path, query)
            items += page.get("items") or []
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                return items

    def _log(self, method: str, url: str, status: str, started: float) -> None:
        if self.trace:
            elapsed = (time.monotonic() - started) * 1000
            with self._lock:
                print(f"I0000 {method} {url} {status} in {elapsed:.0f} milliseconds",
                      file=sys.stderr, flush=True)

    def _summary(self) -> None:
        print(f"meshcfg: {self.requests} API requests", file=sys.stderr)


class Session:
    """One invocation's view of a cluster: the kubeconfig is read once, one `Api`."""

    def __init__(self, kubeconfig: str | None, context: str | None,
                 environ: Mapping[str, str] | None = None):
        self.kubeconfig, self.context = kubeconfig, context
        self.environ = os.environ if environ is None else environ
        self._access: ClusterAccess | None = None
        self._api: Api | None = None

    @property
    def access(self) -> ClusterAccess:
        if self._access is None:
            from .kubeconfig import load_access  # noqa: PLC0415

            self._access = load_access(self.kubeconfig, self.context)
        return self._access

    @property
    def api(self) -> Api:
        if self._api is None:
            self._api = Api(self.access, environ=self.environ)
        return self._api

    def namespace(self, explicit: str | None) -> str:
        """`-n`, else the context's namespace, else `default` (kubectl's rule)."""
        return explicit or self.access.namespace
