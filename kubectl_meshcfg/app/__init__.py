"""Use cases (explain, lint, get, render, sync, apply, delete, diff) and local manifests:
options in, results out. No click; the cluster only through `kube`.
"""
