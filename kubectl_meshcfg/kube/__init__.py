"""Kubernetes access: kubeconfig and auth, the transport, typed API errors, reads, writes.

Imports only `core`; never imported by `core`.
"""
