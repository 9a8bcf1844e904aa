"""The live habits tests use the cluster tests' live-command fixtures."""

from cluster.livelib import crd, mesh_ns, meshcfg  # noqa: F401  (fixtures, registered here)
