"""The Kubernetes renders for the reference inventory: reviewed goldens, and every API
object valid (strict) for the inventory's Kubernetes version by kubernetes-validate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from labctl.inventory import require_inventory
from labctl.inventory.model import Inventory
from labctl.platform import NodeRuntime
from labctl.render.kubernetes import addons, audit, common, flags, host, kubelet, node, pods
from labctl.render.kubernetes.kubeconfig import embedded_kubeconfig, node_kubeconfig
from labctl.render.systemd import unit_text
from labctl.sim import images
from labctl.sim.render import kubernetes as sim_kubernetes
from labctl.sim.render.kubernetes import shared_kernel
from tests.conftest import REFERENCE, assert_golden


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return require_inventory(REFERENCE)


def _version(inventory: Inventory) -> str:
    # kubernetes-validate ships one schema set per minor release (x.y.0).
    major, minor, _ = inventory.cluster.kubernetes.version.split(".")
    return f"{major}.{minor}.0"


@pytest.mark.parametrize("component", common.CONTROL_PLANE)
def test_static_pods_match_golden_and_validate_strictly(
    inventory: Inventory, component: str
) -> None:
    pod = pods.static_pod(inventory, inventory.server("fohn"), component)
    assert_golden(f"kubernetes/{component}.yaml", common.to_yaml(pod))
    kubernetes_validate.validate(pod, _version(inventory), strict=True)


def test_addons_match_golden_and_validate_strictly(inventory: Inventory) -> None:
    docs = addons.all_addons(inventory)
    assert_golden("kubernetes/addons.yaml", common.to_yaml(*docs))
    for doc in docs:
        kubernetes_validate.validate(doc, _version(inventory), strict=True)


def test_the_simulated_labs_kube_proxy_leaves_the_shared_conntrack_table_alone(
    inventory: Inventory,
) -> None:
    """Nodes that share one kernel (the simulated platform's) cannot raise
    nf_conntrack_max; a real lab's kube-proxy sizes it as upstream does."""
    docs = addons.all_addons(inventory, shared_kernel("host").kube_proxy_settings)
    assert_golden("kubernetes/addons-shared-host.yaml", common.to_yaml(*docs))
    for doc in docs:
        kubernetes_validate.validate(doc, _version(inventory), strict=True)

    def proxy_config(docs: list[dict[str, Any]]) -> Any:
        (config,) = [d for d in docs if d["kind"] == "ConfigMap" and
                     d["metadata"]["name"] == "kube-proxy"]  # fmt: skip
        return yaml.safe_load(config["data"]["config.conf"])

    assert proxy_config(docs)["conntrack"] == {"maxPerCore": 0}
    assert "conntrack" not in proxy_config(
        addons.all_addons(inventory, NodeRuntime().kube_proxy_settings)
    )
    assert "conntrack" not in proxy_config(addons.all_addons(inventory))


def test_strict_validation_catches_a_misspelt_field(inventory: Inventory) -> None:
    # The check above can fail: a field the schema does not know is refused.
    pod = pods.static_pod(inventory, inventory.server("fohn"), "kube-scheduler")
    pod["spec"]["hostNetwrok"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, _version(inventory), strict=True)


def test_the_cli_validates_the_written_manifests(inventory: Inventory, tmp_path: Path) -> None:
    """The same check as operators run it: `kubernetes-validate --strict` on files."""
    files = []
    for component in common.CONTROL_PLANE:
        path = tmp_path / f"{component}.yaml"
        path.write_text(
            common.to_yaml(pods.static_pod(inventory, inventory.server("fohn"), component))
        )
        files.append(str(path))
    tool = Path(sys.executable).with_name("kubernetes-validate")
    done = subprocess.run(
        [str(tool), "--strict", "-k", _version(inventory), *files],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


# The goldens keep their names: "-host" is the kubelet of nodes that share one kernel
# (what the simulated lab's host runtime always had), "-static-pods" a real lab's.
@pytest.mark.parametrize(
    ("node_runtime", "golden"), [(NodeRuntime(), "static-pods"), (shared_kernel("host"), "host")]
)
def test_kubelet_configuration_and_unit_match_golden(
    inventory: Inventory, node_runtime: NodeRuntime, golden: str
) -> None:
    wind = inventory.server("wind")
    config = kubelet.configuration(inventory, wind, node_runtime)
    assert config["clusterDNS"] == ["10.189.0.10"]
    assert config["tlsCertFile"] == "/etc/kubernetes/ssl/kubelet-wind.pem"
    assert_golden(f"kubernetes/kubelet-config-wind-{golden}.yaml", common.to_yaml(config))
    text = unit_text(kubelet.unit(inventory, wind, "/opt/bin", node_runtime))
    assert_golden(f"kubernetes/kubelet-wind-{golden}.service", text)


def test_kubeconfigs_match_golden(inventory: Inventory) -> None:
    kubelet_conf = node_kubeconfig(inventory, "system:node:wind", "kubelet-client-wind")
    assert_golden("kubernetes/kubelet-wind.conf", common.to_yaml(kubelet_conf))
    for user, cert in (
        ("system:kube-controller-manager", "kube-controller-manager"),
        ("system:kube-scheduler", "kube-scheduler"),
        ("system:kube-proxy", "kube-proxy"),
    ):
        conf = node_kubeconfig(inventory, user, cert)
        assert_golden(f"kubernetes/{cert}.conf", common.to_yaml(conf))
    admin = embedded_kubeconfig(inventory, "bluecmd", b"CA", b"CERT", b"KEY")
    assert_golden("kubernetes/admin.conf", common.to_yaml(admin))


def test_api_endpoint_and_addresses(inventory: Inventory) -> None:
    assert common.api_url(inventory) == "https://31.31.164.220:6443"
    assert common.cluster_dns(inventory) == "10.189.0.10"
    assert common.etcd_servers(inventory) == (
        "https://31.31.164.220:2379,https://31.31.164.221:2379,https://31.31.164.222:2379"
    )
    assert common.image(inventory, "kube-apiserver") == "registry.k8s.io/kube-apiserver:v1.36.3"
    args = flags.apiserver(inventory, inventory.server("fohn"))
    assert "--authorization-mode=Node,RBAC" in args
    assert "--service-cluster-ip-range=10.189.0.0/16" in args
    cm = flags.controller_manager(inventory)
    assert "--cluster-cidr=10.188.0.0/16" in cm and "--node-cidr-mask-size=24" in cm


def test_audit_policy_matches_golden() -> None:
    assert_golden("kubernetes/audit-policy.yaml", common.to_yaml(audit.policy()))


@pytest.mark.parametrize("component", common.CONTROL_PLANE)
def test_host_units_run_the_static_pods_command_line(inventory: Inventory, component: str) -> None:
    fohn = inventory.server("fohn")
    pod = pods.static_pod(inventory, fohn, component)
    command = pod["spec"]["containers"][0]["command"]
    unit = host.component_unit(inventory, fohn, component, "/opt/bin")
    exec_start = dict(unit["Service"])["ExecStart"].split(" ")
    assert exec_start[0] == f"/opt/bin/{component}"
    assert exec_start[1:] == command[1:]


def test_containerd_config_matches_golden() -> None:
    assert_golden("kubernetes/containerd-host.toml", sim_kubernetes.containerd_config())


def test_node_services(inventory: Inventory) -> None:
    fohn, wind = inventory.server("fohn"), inventory.server("wind")
    shared = node.services(inventory, fohn, "host", "/opt/bin", node=shared_kernel("host"))
    on_fohn = [s.unit for s in shared]
    assert on_fohn == [
        "labctl-containerd.service",
        "kube-apiserver.service",
        "kube-controller-manager.service",
        "kube-scheduler.service",
        "kubelet.service",
    ]
    static = node.services(inventory, fohn, "static-pods", "/opt/bin")
    assert [s.unit for s in static] == ["kubelet.service"]
    paths = [f.path for f in static[0].files]
    assert "/etc/kubernetes/manifests/kube-apiserver.yaml" in paths
    on_wind = node.services(inventory, wind, "static-pods", "/opt/bin")
    assert not any("manifests" in f.path for s in on_wind for f in s.files)
    # A new certificate changes the digest, and with it the static pods' annotation.
    rotated = node.services(inventory, fohn, "static-pods", "/opt/bin", pki_digest="new")
    assert rotated[0].digest != static[0].digest
    pod = yaml.safe_load(
        next(f.content for f in rotated[0].files if f.path.endswith("kube-apiserver.yaml"))
    )
    assert pod["metadata"]["annotations"] == {node.PKI_ANNOTATION: "new"}


def test_the_static_pods_kubelet_configuration_is_the_host_ones_minus_its_sim_settings(
    inventory: Inventory,
) -> None:
    """kubernetes-validate has no KubeletConfiguration schema; the real kubelet decodes
    its configuration strictly (an unknown field is fatal) and accepts the host
    runtime's in the e2e test, so every field of the other runtime must be among them."""
    wind = inventory.server("wind")
    real = kubelet.configuration(inventory, wind)
    sim = kubelet.configuration(inventory, wind, shared_kernel("host"))
    assert set(real) <= set(sim)
    differ = {k for k in real if real[k] != sim[k]}
    assert differ == {"cgroupDriver"}


def test_the_pods_runtime_is_static_pods_on_the_host_runtimes_nodes(inventory: Inventory) -> None:
    """The simulated lab's pods runtime: the kubelet, containerd and its settings as in
    the host runtime (nodes share one host), the control plane as static pods."""
    fohn = inventory.server("fohn")
    found = node.services(inventory, fohn, "pods", "/opt/bin", node=shared_kernel("pods"))
    assert [s.unit for s in found] == ["labctl-containerd.service", "kubelet.service"]
    containerd = {f.path: f for f in found[0].files}
    wrapper = containerd[sim_kubernetes.CONTAINERD_WRAPPER]
    assert wrapper.mode == 0o755 and "mount -t cgroup" in wrapper.content
    assert (
        f"/bin/sh {sim_kubernetes.CONTAINERD_WRAPPER} /usr/bin/containerd"
        in containerd["/etc/systemd/system/labctl-containerd.service"].content
    )
    paths = [f.path for f in found[1].files]
    assert "/etc/kubernetes/manifests/kube-apiserver.yaml" in paths
    # The sandbox image containerd is told to use is the one labctl builds.
    assert f'sandbox_image = "{images.PAUSE_IMAGE}"' in sim_kubernetes.containerd_config()
    assert common.image_dir("/cache/v1.36.3/bin/") == "/cache/v1.36.3/images"
