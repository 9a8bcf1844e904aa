"""A real node for the test cluster: containerd + runc + CNI plugins + kubelet, built from
Go modules, started by ``scripts/testcluster up --node`` (see docs/testcluster.md).

Modules: ``build`` (binaries), ``host`` (what the node changes on the host, and undoing
it), ``images`` (local image tarballs, no registry), ``svcrelay`` (kube-proxy stand-in for
the ``kubernetes`` Service), ``config`` (containerd/kubelet/CNI configuration).
"""
