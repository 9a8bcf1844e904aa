"""Fixtures for tests against Istio's real injector (``istioctl kube-inject``, offline).

``istio_injector`` (session) is an :class:`~.injector.Injector`: ``scripts/istioctl``
builds istioctl from the pinned ``istio.io/istio`` module on first use (cached in
``~/.cache/meshcfg-istio/<version>/``), and the injector inputs (mesh config, injection
templates, values) are rendered from Istio's own charts with ``istioctl manifest
generate`` into a temporary directory of this session.

    objs = istio_injector.inject(manifest)          # dict, list of dicts or YAML text
    pod = objs[0]
    istio_injector.proxy(pod), istio_injector.init(pod)      # the injected containers
    istio_injector.resources(c), istio_injector.args(c)
    istio_injector.flag_value(c, "--proxyLogLevel")
    istio_injector.proxy_config(pod)                # PROXY_CONFIG env, parsed
    istio_injector.capture_args(pod)                # istio-init flags: {"-i": ..., "-d": ...}
    istio_injector.lifecycle(c)
    istio_injector.with_mesh({"defaultConfig": {...}}).inject(...)   # custom mesh config
    istio_injector.with_native_sidecars().inject(...)                # native sidecar mode

``make_pod`` / ``make_deployment`` build small input manifests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from .injector import Injector


@pytest.fixture(scope="session")
def istio_injector(tmp_path_factory: pytest.TempPathFactory) -> Injector:
    workdir: Path = tmp_path_factory.mktemp("istio-injector")
    return Injector.create(workdir=workdir)


def _pod_spec(containers: list[dict[str, Any]] | None,
              init_containers: list[dict[str, Any]] | None,
              extra_spec: Mapping[str, Any] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": containers or [{
            "name": "app",
            "image": "registry.example/app:1",
            "ports": [{"containerPort": 8080, "name": "http"}],
        }],
    }
    if init_containers:
        spec["initContainers"] = init_containers
    spec.update(extra_spec or {})
    return spec


PodFactory = Callable[..., dict[str, Any]]


@pytest.fixture
def make_pod() -> PodFactory:
    def make(annotations: Mapping[str, str] | None = None, *,
             containers: list[dict[str, Any]] | None = None,
             init_containers: list[dict[str, Any]] | None = None,
             spec: Mapping[str, Any] | None = None,
             name: str = "app-0", namespace: str = "ai") -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": "app"},
                         "annotations": dict(annotations or {})},
            "spec": _pod_spec(containers, init_containers, spec),
        }
    return make


@pytest.fixture
def make_deployment() -> PodFactory:
    def make(annotations: Mapping[str, str] | None = None, *,
             containers: list[dict[str, Any]] | None = None,
             init_containers: list[dict[str, Any]] | None = None,
             spec: Mapping[str, Any] | None = None,
             name: str = "app", namespace: str = "ai") -> dict[str, Any]:
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name},
                                 "annotations": dict(annotations or {})},
                    "spec": _pod_spec(containers, init_containers, spec),
                },
            },
        }
    return make
