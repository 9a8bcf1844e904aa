"""meshcfg-drain: the preStop drain agent for istio-proxy."""

__version__ = "0.1.0"
