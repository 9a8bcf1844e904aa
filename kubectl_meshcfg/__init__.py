"""kubectl meshcfg: scoped Istio sidecar configuration."""

__version__ = "0.1.0"
