"""Configuration files of the node: containerd (CRI), the CNI network, kubelet.

Facts behind the settings are in ../../docs/testcluster.md ("The node").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

NODE_NAME = "meshcfg-node"
RUN_DIR = Path("/run/meshcfg-node")    # the one-node-per-machine marker and containerd state
CGROUP_ROOT = "/meshcfg-node"
BRIDGE = "meshcfg0"
POD_CIDR = "10.250.0.0/24"             # outside the harness's 10.16-249.x.x/30 range
GATEWAY = "10.250.0.1"                 # the bridge's address = the node's InternalIP
SERVICE_IP = "10.0.0.1"                # the `kubernetes` Service (first of SERVICE_CIDR)
PAUSE_IMAGE = "meshcfg.local/pause:3.10"
CNI_NETWORK = "meshcfg"


@dataclass(frozen=True)
class NodePaths:
    state: Path                        # $MESHCFG_TESTCLUSTER_DIR/node

    @property
    def containerd_root(self) -> Path:
        return self.state / "containerd"

    @property
    def containerd_state(self) -> Path:
        return RUN_DIR / "containerd"

    @property
    def socket(self) -> Path:
        return RUN_DIR / "containerd.sock"

    @property
    def kubelet_root(self) -> Path:
        return self.state / "kubelet"

    @property
    def cni_conf(self) -> Path:
        return self.state / "cni"

    @property
    def ipam(self) -> Path:
        return self.state / "ipam"

    @property
    def pod_logs(self) -> Path:
        return self.state / "pod-logs"

    @property
    def images(self) -> Path:
        return self.state / "images"

    def mount_prefixes(self) -> tuple[str, ...]:
        return (str(self.state), str(RUN_DIR), "/run/containerd")


def containerd_toml(paths: NodePaths, runc: Path, cni_bin: Path) -> str:
    # restrict_oom_score_adj: the VM drops CAP_SYS_RESOURCE, so lowering oom_score_adj fails.
    # The opt and NRI plugins would create /opt/containerd and /var/run/nri: not needed.
    return f"""version = 4
root = "{paths.containerd_root}"
state = "{paths.containerd_state}"
imports = []
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.nri.v1.nri",
                    "io.containerd.tracing.processor.v1.otlp",
                    "io.containerd.internal.v1.tracing"]

[plugins.'io.containerd.server.v1.grpc']
  address = "{paths.socket}"

[plugins.'io.containerd.server.v1.ttrpc']
  address = "{paths.socket}.ttrpc"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "{PAUSE_IMAGE}"

[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  enable_selinux = false
  disable_apparmor = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["{cni_bin}"]
    conf_dir = "{paths.cni_conf}"
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        SystemdCgroup = false
"""


def cni_conflist(paths: NodePaths) -> str:
    return json.dumps({
        "cniVersion": "1.0.0", "name": CNI_NETWORK,
        "plugins": [
            {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False,
             "hairpinMode": True,
             "ipam": {"type": "host-local", "dataDir": str(paths.ipam),
                      "ranges": [[{"subnet": POD_CIDR, "gateway": GATEWAY}]],
                      "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "loopback"},
        ]}, indent=1)


def kubelet_config(paths: NodePaths, port: int, healthz_port: int) -> str:
    # failCgroupV1: this VM only has cgroup v1 controllers (KEP-5573 made v1 fail by default).
    # Eviction and image GC thresholds are lowered so a busy shared disk never evicts test
    # pods or deletes the locally imported images (nothing could pull them again).
    return json.dumps({
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "failCgroupV1": False, "cgroupDriver": "cgroupfs", "cgroupRoot": CGROUP_ROOT,
        "containerRuntimeEndpoint": f"unix://{paths.socket}",
        "address": GATEWAY, "port": port, "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1", "healthzPort": healthz_port,
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "podLogsDir": str(paths.pod_logs),
        "failSwapOn": False, "protectKernelDefaults": False,
        "evictionHard": {"memory.available": "50Mi", "nodefs.available": "1%",
                         "nodefs.inodesFree": "1%", "imagefs.available": "1%"},
        "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False, "resolvConf": "/etc/resolv.conf",
        "clusterDomain": "cluster.local", "maxPods": 60,
        "nodeStatusUpdateFrequency": "2s", "syncFrequency": "10s",
        "fileCheckFrequency": "20s", "volumeStatsAggPeriod": "0s",
    }, indent=1)
