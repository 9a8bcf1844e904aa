"""kubeconfig files read exactly as kubectl reads them (client-go's loading rules).

* `--kubeconfig PATH`: that one file, which must exist.
* else `$KUBECONFIG`: a list of files (`:`-separated); missing files are skipped; the
  first file to define a cluster, user or context name wins it, and the first file that
  sets `current-context` wins that.
* else `~/.kube/config`; with no file at all, the in-cluster ServiceAccount when running
  in a pod.
* `--context` picks another context; the context's `namespace` is the default namespace
  (`default` when it has none).
* Relative file paths in a kubeconfig are relative to the file that holds them.

Pure Python and no Kubernetes client: reading a kubeconfig must stay fast.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from ..core.errors import MeshcfgError

IN_CLUSTER_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
_PATH_KEYS = {
    "cluster": ("certificate-authority",),
    "user": ("client-certificate", "client-key", "tokenFile"),
}


class KubeconfigError(MeshcfgError):
    """The kubeconfig is missing, unreadable or names something that does not exist."""


@dataclass(frozen=True)
class ClusterAccess:
    """Everything needed to talk to one API server as one user."""

    server: str
    context: str | None = None
    cluster_name: str | None = None
    user_name: str | None = None
    namespace: str = "default"          # the context's namespace, else "default"
    ca_file: str | None = None
    ca_data: bytes | None = None
    insecure: bool = False
    tls_server_name: str | None = None
    token: str | None = None
    token_file: str | None = None
    cert_file: str | None = None
    cert_data: bytes | None = None
    key_file: str | None = None
    key_data: bytes | None = None
    username: str | None = None
    password: str | None = None
    exec_config: Mapping[str, Any] | None = None
    exec_dir: str | None = None         # where the exec plugin runs (the kubeconfig's dir)
    auth_provider: str | None = None
    proxy_url: str | None = None

    def describe(self) -> str:
        return f'context "{self.context}"' if self.context else "in-cluster config"


def kubeconfig_paths(explicit: str | None) -> list[str]:
    """The files kubectl would read, in priority order."""
    if explicit:
        if not os.path.isfile(explicit):
            raise KubeconfigError(f"stat {explicit}: no such file or directory (--kubeconfig)")
        return [explicit]
    env = os.environ.get("KUBECONFIG", "")
    if env:
        paths = [os.path.expanduser(p) for p in env.split(os.pathsep) if p]
        return [p for p in dict.fromkeys(paths) if os.path.isfile(p)]
    default = os.path.expanduser("~/.kube/config")
    return [default] if os.path.isfile(default) else []


def merge_kubeconfigs(paths: list[str]) -> dict[str, Any]:
    """Merge files with client-go's rules: first definition of a name wins."""
    merged: dict[str, Any] = {"clusters": {}, "users": {}, "contexts": {},
                              "current-context": ""}
    for path in paths:
        doc = _read_file(path)
        base = os.path.dirname(os.path.abspath(path))
        for section, inner in (("clusters", "cluster"), ("users", "user"),
                               ("contexts", "context")):
            for entry in doc.get(section) or []:
                if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                    raise KubeconfigError(f"{path}: every entry of {section} needs a name")
                if entry["name"] in merged[section]:
                    continue
                body = dict(entry.get(inner) or {})
                _resolve_paths(body, _PATH_KEYS.get(inner, ()), base)
                if inner == "user" and isinstance(body.get("exec"), dict):
                    body["exec"] = _resolve_exec(dict(body["exec"]), base)
                    body["_dir"] = base
                merged[section][entry["name"]] = body
        if not merged["current-context"] and doc.get("current-context"):
            merged["current-context"] = str(doc["current-context"])
    return merged


def _read_file(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            doc = yaml.safe_load(handle)
    except OSError as error:
        raise KubeconfigError(f"cannot read kubeconfig {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise KubeconfigError(f"kubeconfig {path} is not valid YAML: "
                              f"{' '.join(str(error).split())}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise KubeconfigError(f"kubeconfig {path} is not a map")
    return doc


def _resolve_paths(body: dict[str, Any], keys: tuple[str, ...], base: str) -> None:
    for key in keys:
        value = body.get(key)
        if isinstance(value, str) and value and not os.path.isabs(value):
            body[key] = os.path.join(base, os.path.expanduser(value))


def _resolve_exec(exec_config: dict[str, Any], base: str) -> dict[str, Any]:
    command = exec_config.get("command")
    # client-go resolves the command only when it is a relative path, not a bare name.
    if isinstance(command, str) and os.sep in command and not os.path.isabs(command):
        exec_config["command"] = os.path.join(base, command)
    return exec_config


def load_access(kubeconfig: str | None, context: str | None) -> ClusterAccess:
    """The cluster, user and default namespace kubectl would use with these flags."""
    paths = kubeconfig_paths(kubeconfig)
    if not paths and not context and os.environ.get("KUBERNETES_SERVICE_HOST"):
        return _in_cluster()
    merged = merge_kubeconfigs(paths)
    name = context or merged["current-context"]
    if not name:
        where = ", ".join(paths) if paths else "no kubeconfig file found"
        raise KubeconfigError(f"no current context is set ({where}); pass --context, run "
                              "kubectl config use-context NAME, or set KUBECONFIG")
    ctx = merged["contexts"].get(name)
    if ctx is None:
        raise KubeconfigError(f'context "{name}" does not exist in the kubeconfig '
                              f"({', '.join(paths) or 'no file'})")
    cluster_name = ctx.get("cluster")
    cluster = merged["clusters"].get(cluster_name)
    if cluster is None or not cluster.get("server"):
        raise KubeconfigError(f'context "{name}": cluster "{cluster_name}" is not defined '
                              "or has no server")
    user_name = ctx.get("user")
    user = merged["users"].get(user_name, {}) if user_name else {}
    provider = user.get("auth-provider")
    return ClusterAccess(
        server=str(cluster["server"]).rstrip("/"), context=name,
        cluster_name=str(cluster_name), user_name=str(user_name) if user_name else None,
        namespace=str(ctx.get("namespace") or "default"),
        ca_file=cluster.get("certificate-authority"),
        ca_data=_b64(cluster.get("certificate-authority-data"), "certificate-authority-data"),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        tls_server_name=cluster.get("tls-server-name"),
        proxy_url=cluster.get("proxy-url"),
        token=user.get("token"), token_file=user.get("tokenFile"),
        cert_file=user.get("client-certificate"),
        cert_data=_b64(user.get("client-certificate-data"), "client-certificate-data"),
        key_file=user.get("client-key"),
        key_data=_b64(user.get("client-key-data"), "client-key-data"),
        username=user.get("username"), password=user.get("password"),
        exec_config=user.get("exec"), exec_dir=user.get("_dir"),
        auth_provider=provider.get("name") if isinstance(provider, dict) else None,
    )


def _b64(value: Any, what: str) -> bytes | None:
    if not value:
        return None
    try:
        return base64.b64decode(str(value), validate=False)
    except ValueError:
        raise KubeconfigError(f"kubeconfig {what} is not valid base64") from None


def _in_cluster() -> ClusterAccess:
    host = os.environ["KUBERNETES_SERVICE_HOST"]
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if ":" in host:
        host = f"[{host}]"
    namespace = "default"
    ns_file = os.path.join(IN_CLUSTER_DIR, "namespace")
    if os.path.isfile(ns_file):
        with open(ns_file, encoding="utf-8") as handle:
            namespace = handle.read().strip() or "default"
    return ClusterAccess(server=f"https://{host}:{port}", namespace=namespace,
                         ca_file=os.path.join(IN_CLUSTER_DIR, "ca.crt"),
                         token_file=os.path.join(IN_CLUSTER_DIR, "token"))
