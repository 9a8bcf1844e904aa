"""Kubelet-faithful termination harness for meshcfg-drain (see scripts/termination-harness)."""
