"""Tests against Istio's real sidecar injector (istioctl kube-inject, built from source)."""
